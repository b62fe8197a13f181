//! Every keepalived configuration in a directory (`KEEPALIVED_SAMPLES`, e.g.
//! keepalived's `doc/samples/`) must load or be refused for a reason
//! gatewayd states. A tool for checking a tree of real files, not run by
//! default: `KEEPALIVED_SAMPLES=dir cargo test -p gw-keepalived -- --ignored`.

#[test]
#[ignore = "needs KEEPALIVED_SAMPLES=dir"]
fn every_sample_in_a_directory() {
    let Ok(dir) = std::env::var("KEEPALIVED_SAMPLES") else { return };
    let mut paths: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort();
    for p in paths {
        match gw_keepalived::load(&p) {
            Ok(l) => {
                println!("{}: {} services, {} requests", p.display(), l.services.len(), l.requests().len());
                for n in &l.notices {
                    println!("  {n}");
                }
            }
            Err(e) => println!("{}: REFUSED {e}", p.display()),
        }
    }
}
