//! The order in which the established flows are visited.
//!
//! Flows are opened in number order, so their sessions sit in the
//! gateway's session slab in that order too: visiting them in number order
//! ("table order") walks the slab sequentially, which the CPU's stream
//! prefetcher hides. Real traffic is not so kind, so the harness visits
//! flows through a pseudo-random permutation ([`Order::Random`]) or draws
//! them with a Zipf distribution ([`Order::Zipf`], a few hot flows and a
//! long tail), whose ranks go through the same permutation so hot flows are
//! scattered over the table.

/// How [`Order::flow`] maps the i-th packet to a flow among `n`.
#[derive(Clone, Copy, Debug)]
pub enum Order {
    /// Flow `i mod n`: sequential in the session table.
    Table,
    /// Every flow once per round, in a fixed pseudo-random order.
    Random(Permutation),
    /// Flows drawn with a Zipf distribution (exponent [`ZIPF_S`]).
    Zipf(Zipf, Permutation),
}

/// Exponent of the Zipf row (YCSB's default skew).
pub const ZIPF_S: f64 = 0.99;

impl Order {
    /// The order `name` ("table", "random", "zipf") over `n` flows.
    pub fn new(name: &str, n: u64) -> Option<Order> {
        match name {
            "table" => Some(Order::Table),
            "random" => Some(Order::Random(Permutation::new(n))),
            "zipf" => Some(Order::Zipf(Zipf::new(n, ZIPF_S, n ^ 0x5eed), Permutation::new(n))),
            _ => None,
        }
    }

    /// The flow of packet `i` (`i < n` for a round-robin order).
    #[inline]
    pub fn flow(&mut self, i: u64) -> u64 {
        match self {
            Order::Table => i,
            Order::Random(p) => p.at(i),
            Order::Zipf(z, p) => p.at(z.sample() - 1),
        }
    }
}

/// A bijection of `0..n` that scatters neighbours: a mix of xor-shifts and
/// odd multiplications (each a bijection of `bits`-bit numbers), walked
/// again while the result is `n` or more (fewer than 2 steps on average).
#[derive(Clone, Copy, Debug)]
pub struct Permutation {
    n: u64,
    mask: u64,
    shift: u32,
}

impl Permutation {
    pub fn new(n: u64) -> Permutation {
        let n = n.max(1);
        let bits = n.next_power_of_two().trailing_zeros().max(1);
        Permutation { n, mask: (1u64 << bits) - 1, shift: bits.div_ceil(2) }
    }

    #[inline]
    fn mix(&self, mut x: u64) -> u64 {
        x = x.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(0x632b_e59b) & self.mask;
        x ^= x >> self.shift;
        x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9) & self.mask;
        x ^= x >> self.shift;
        x
    }

    /// The image of `i < n`.
    #[inline]
    pub fn at(&self, i: u64) -> u64 {
        let mut x = self.mix(i % self.n);
        while x >= self.n {
            x = self.mix(x);
        }
        x
    }
}

/// Zipf sampling over ranks `1..=n` by rejection-inversion (Hörmann and
/// Derflinger 1996, as Apache Commons RNG's `RejectionInversionZipfSampler`):
/// O(1) per sample, no table, so 10 M flows cost nothing to set up.
#[derive(Clone, Copy, Debug)]
pub struct Zipf {
    n: f64,
    s: f64,
    h_x1: f64,
    h_n: f64,
    s_val: f64,
    rng: u64,
}

impl Zipf {
    pub fn new(n: u64, s: f64, seed: u64) -> Zipf {
        let mut z = Zipf { n: n.max(1) as f64, s, h_x1: 0.0, h_n: 0.0, s_val: 0.0, rng: seed | 1 };
        z.h_x1 = z.h_integral(1.5) - 1.0;
        z.h_n = z.h_integral(z.n + 0.5);
        z.s_val = 2.0 - z.h_integral_inv(z.h_integral(2.5) - z.h(2.0));
        z
    }

    fn h(&self, x: f64) -> f64 {
        (-self.s * x.ln()).exp()
    }

    fn h_integral(&self, x: f64) -> f64 {
        let l = x.ln();
        helper2((1.0 - self.s) * l) * l
    }

    fn h_integral_inv(&self, x: f64) -> f64 {
        let t = (x * (1.0 - self.s)).max(-1.0);
        (helper1(t) * x).exp()
    }

    /// A uniform number in [0, 1) (xorshift64*).
    fn uniform(&mut self) -> f64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A rank in `1..=n`, rank `k` with probability proportional to `k^-s`.
    pub fn sample(&mut self) -> u64 {
        loop {
            let u = self.h_n + self.uniform() * (self.h_x1 - self.h_n);
            let x = self.h_integral_inv(u);
            let k = (x + 0.5).floor().clamp(1.0, self.n);
            if k - x <= self.s_val || u >= self.h_integral(k + 0.5) - self.h(k) {
                return k as u64;
            }
        }
    }
}

/// `ln(1 + x) / x`, 1 at 0.
fn helper1(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x / 2.0
    }
}

/// `(e^x - 1) / x`, 1 at 0.
fn helper2(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutations_are_bijections_that_scatter_neighbours() {
        for n in [1u64, 2, 3, 7, 1000, 65_537] {
            let p = Permutation::new(n);
            let mut seen = vec![false; n as usize];
            for i in 0..n {
                let f = p.at(i);
                assert!(f < n && !seen[f as usize], "n={n} i={i}");
                seen[f as usize] = true;
            }
        }
        // Consecutive packets land far apart in a large table.
        let p = Permutation::new(1_000_000);
        let near = (0..1000).filter(|&i| p.at(i).abs_diff(p.at(i + 1)) < 64).count();
        assert!(near < 10, "{near} of 1000 neighbours stay close");
    }

    #[test]
    fn zipf_ranks_follow_the_power_law() {
        let n = 1_000_000;
        let mut z = Zipf::new(n, ZIPF_S, 1);
        let mut counts = [0u64; 4];
        let draws = 200_000;
        for _ in 0..draws {
            let k = z.sample();
            assert!((1..=n).contains(&k));
            if k <= 4 {
                counts[k as usize - 1] += 1;
            }
        }
        // P(1)/P(2) = 2^s, P(1)/P(4) = 4^s (with sampling noise).
        let r2 = counts[0] as f64 / counts[1] as f64;
        let r4 = counts[0] as f64 / counts[3] as f64;
        assert!((1.8..2.2).contains(&r2), "P(1)/P(2) = {r2}");
        assert!((3.4..4.6).contains(&r4), "P(1)/P(4) = {r4}");
        // With s = 0.99 over 1M ranks, rank 1 draws about 1/H(1M) ~ 7 %.
        let p1 = counts[0] as f64 / draws as f64;
        assert!((0.05..0.09).contains(&p1), "P(1) = {p1}");
    }
}
