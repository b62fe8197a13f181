use super::*;

const T: Tuple = Tuple { saddr: 0xc612_0002, daddr: 0xc612_0064, sport: 40000, dport: 80 };

#[test]
fn a_cookie_holds_the_mss_index_for_two_minutes() {
    for mssind in 0..4 {
        let c = cookie(7, &T, 1000, 500, mssind);
        assert_eq!(check(7, &T, 1000, c, 500), Some(mssind));
        assert_eq!(check(7, &T, 1000, c, 501), Some(mssind), "the next minute");
        assert_eq!(check(7, &T, 1000, c, 502), None, "too old");
        assert_eq!(check(7, &T, 1000, c, 499), None, "from the future");
        assert_eq!(check(8, &T, 1000, c, 500), None, "another secret");
        // (As Linux's, the ISN is added: a neighbouring ISN only moves the
        // index, which a client that has the cookie can do anyway.)
        assert_eq!(check(7, &T, 1000 + 0x0123_4567, c, 500), None, "another ISN");
        assert_eq!(check(7, &Tuple { sport: 40001, ..T }, 1000, c, 500), None, "another tuple");
    }
}

#[test]
fn random_acks_almost_never_pass() {
    // 2^32 cookies, 4 valid MSS indexes over 2 minutes in 2^24: about
    // 1 in 2^21 random guesses pass (as Linux).
    let mut x: u32 = 1;
    let mut passed = 0;
    for _ in 0..200_000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        passed += u32::from(check(7, &T, 1000, x, 500).is_some());
    }
    assert!(passed <= 2, "{passed}");
}

#[test]
fn the_mss_index_rounds_down() {
    assert_eq!(mss_index(&V4, 1460), 3);
    assert_eq!(mss_index(&V4, 9000), 3);
    assert_eq!(mss_index(&V4, 1400), 1);
    assert_eq!(mss_index(&V4, 100), 0);
}

#[test]
fn timestamps_carry_window_scale_and_sack_and_never_run_ahead() {
    for now in [0u64, 63, 64, 1_000_037, u32::MAX as u64 + 5] {
        for (ws, sack) in [(Some(7), true), (None, false), (Some(14), false), (Some(0), true)] {
            let ts = ts_encode(now, ws, sack);
            assert_eq!(ts_decode(ts), (ws, sack));
            let n = now as u32;
            assert!(n.wrapping_sub(ts) < 128, "{now} {ts}");
        }
    }
}

#[test]
fn options_are_written_as_linux_lays_them_out_and_read_back() {
    let mut o = [0; 20];
    let n = write_opts(1460, Some(7), true, Some((5, 6)), &mut o);
    assert_eq!(n, 20);
    let mut hdr = vec![0u8; 20];
    hdr.extend_from_slice(&o[..n]);
    let p = parse_opts(&hdr);
    assert_eq!(p, Opts { mss: 1460, wscale: Some(7), sack: true, ts: Some((5, 6)) });
    assert_eq!(write_opts(536, None, false, None, &mut o), 4);
    assert_eq!(write_opts(536, None, true, None, &mut o), 8);
}
