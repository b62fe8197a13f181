//! Replays the fuzz corpora and every input that once crashed a target
//! (`fuzz/corpus/*`, `fuzz/regressions/*`) through the same entry points
//! the fuzz targets use, so `cargo test` keeps them fixed.

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut n = 0;
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else { continue };
        for e in entries {
            let path = e.unwrap().path();
            if path.is_file() {
                let data = std::fs::read(&path).unwrap();
                let r = std::panic::catch_unwind(|| run(&data));
                assert!(r.is_ok(), "{} panics", path.display());
                n += 1;
            }
        }
    }
    n
}

#[test]
fn packet_path_corpus_and_regressions_replay_cleanly() {
    assert!(replay("packet_path", dataplane::fuzzing::packet_path) >= 7, "the seed corpus is missing");
}

#[test]
fn control_corpus_and_regressions_replay_cleanly() {
    assert!(replay("control", dataplane::fuzzing::control) >= 6, "the seed corpus is missing");
}
