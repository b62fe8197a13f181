//! Asks a port whether it takes gatewayd's local-port steering rules.
//! `flow_probe -- <EAL args with one --vdev or -a>` e.g.
//! `flow_probe --no-huge -m 256 --no-shconf --no-pci --vdev=net_tap0,iface=gwflowprobe0`
use gw_dpdk::{Eal, Mempool, Port, DEFAULT_DATA_ROOM, SOCKET_ANY};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let _eal = Eal::init(&args)?;
    let pool = Mempool::new("probe", 4095, 64, DEFAULT_DATA_ROOM, SOCKET_ANY)?;
    let port = Port::all()?.into_iter().next().ok_or_else(|| anyhow::anyhow!("no port"))?;
    port.configure(2, 2, 256, 256, &pool, SOCKET_ANY)?;
    port.start()?;
    let mut rules = vec![];
    for proto in [6u8, 17] {
        for w in 0..2 {
            match port.steer_local_ports("198.18.1.10".parse()?, proto, w, 2) {
                Ok(r) => {
                    println!("proto {proto} worker {w}: rule created");
                    rules.push(r);
                }
                Err(e) => println!("proto {proto} worker {w}: refused: {e}"),
            }
        }
    }
    drop(rules);
    port.stop();
    Ok(())
}
