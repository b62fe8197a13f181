/* Everything bindgen reads: the shim and, through it, the DPDK headers
 * (rte_ethdev.h brings rte_flow.h and the protocol headers with it). */
#include "shim.h"
