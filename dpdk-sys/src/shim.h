/*
 * gatewayd's C shim over DPDK's static inline functions and macros.
 *
 * DPDK puts its fast-path API (rx/tx burst, mbuf alloc/free/adjust, the
 * lcore id, rdtsc, rte_errno) in static inline functions and per-lcore TLS
 * macros, which have no symbol to link against. Each function here wraps
 * exactly one of them, with the same arguments, under a `gw_` prefix.
 * Compiled with pkg-config's cflags for libdpdk (including its -march).
 */
#ifndef GW_DPDK_SHIM_H
#define GW_DPDK_SHIM_H

#include <stdint.h>

#include <rte_config.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

/* rte_errno of the calling thread (a per-lcore TLS variable). */
int gw_rte_errno(void);
/* rte_lcore_id(): LCORE_ID_ANY on a thread that EAL does not know. */
unsigned int gw_rte_lcore_id(void);
/* rte_rdtsc(). */
uint64_t gw_rte_rdtsc(void);

uint16_t gw_rte_eth_rx_burst(uint16_t port_id, uint16_t queue_id,
			     struct rte_mbuf **rx_pkts, uint16_t nb_pkts);
uint16_t gw_rte_eth_tx_burst(uint16_t port_id, uint16_t queue_id,
			     struct rte_mbuf **tx_pkts, uint16_t nb_pkts);

struct rte_mbuf *gw_rte_pktmbuf_alloc(struct rte_mempool *mp);
void gw_rte_pktmbuf_free(struct rte_mbuf *m);
char *gw_rte_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len);
char *gw_rte_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
char *gw_rte_pktmbuf_adj(struct rte_mbuf *m, uint16_t len);
int gw_rte_pktmbuf_trim(struct rte_mbuf *m, uint16_t len);
uint16_t gw_rte_pktmbuf_headroom(const struct rte_mbuf *m);
uint16_t gw_rte_pktmbuf_tailroom(const struct rte_mbuf *m);

#endif /* GW_DPDK_SHIM_H */
