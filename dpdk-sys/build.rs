//! Finds the system DPDK with pkg-config, compiles the C shim for its static
//! inline functions, and generates Rust bindings with bindgen.
//!
//! Linking uses exactly the libraries pkg-config reports for `libdpdk`
//! (shared, as Debian ships them). Poll-mode drivers are not linked: EAL of
//! a shared build loads them at `rte_eal_init` from its plugin directory,
//! which this script also finds and exports as `dpdk_sys::PMD_DIR` so the
//! caller can pass it with `-d` when EAL is built without a default.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const MIN_VERSION: &str = "22.11";

fn main() {
    // Probe quietly first: the link flags are emitted after the shim (below).
    let lib = probe(false);

    // The pkg-config crate keeps only -I and -D of the cflags, but DPDK's
    // headers also need `-include rte_config.h` and the -march they were
    // built with, so ask for the full set.
    let cflags = pkg_config_output(&["--cflags", "libdpdk"]);
    let cflags: Vec<&str> = cflags.split_whitespace().collect();

    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let src = manifest.join("src");
    for f in ["shim.c", "shim.h", "wrapper.h"] {
        println!("cargo:rerun-if-changed={}", src.join(f).display());
    }
    println!("cargo:rerun-if-env-changed=DPDK_PMD_DIR");

    build_shim(&src, &cflags);
    // Now the -l flags, after the shim's archive: with `--as-needed` (rustc's
    // default on Linux, and in pkg-config's Libs) a shared library only
    // stays if something before it on the link line uses it.
    probe(true);
    generate_bindings(&src, &cflags);
    write_consts(&lib);
}

fn probe(emit_link_flags: bool) -> pkg_config::Library {
    pkg_config::Config::new()
        .atleast_version(MIN_VERSION)
        .cargo_metadata(emit_link_flags)
        .probe("libdpdk")
        .unwrap_or_else(|e| panic!("dpdk-sys: libdpdk >= {MIN_VERSION} not found by pkg-config: {e}"))
}

/// Runs the pkg-config binary (honouring `$PKG_CONFIG`) and returns stdout.
fn pkg_config_output(args: &[&str]) -> String {
    let exe = env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".into());
    let out =
        Command::new(&exe).args(args).output().unwrap_or_else(|e| panic!("dpdk-sys: running {exe}: {e}"));
    assert!(
        out.status.success(),
        "dpdk-sys: {exe} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("pkg-config output is UTF-8")
}

fn build_shim(src: &Path, cflags: &[&str]) {
    let mut build = cc::Build::new();
    build.file(src.join("shim.c")).include(src).opt_level(2);
    for flag in cflags {
        build.flag(flag);
    }
    build.compile("gw_dpdk_shim");
}

fn generate_bindings(src: &Path, cflags: &[&str]) {
    let builder = bindgen::Builder::default()
        .header(src.join("wrapper.h").to_string_lossy())
        .clang_arg(format!("-I{}", src.display()))
        .clang_args(cflags.iter().copied())
        .allowlist_function("rte_.*|gw_.*")
        .allowlist_type("rte_.*")
        .allowlist_var("RTE_.*|rte_.*|LCORE_ID_ANY|SOCKET_ID_ANY")
        // rte_ethdev.h pulls in rte_flow.h and with it every protocol
        // header. Two of them do not translate and are kept opaque:
        // rte_l2tpv2_combined_msg_hdr is packed yet holds an aligned
        // member (E0588), and rte_gtp_psc_generic_hdr is a packed
        // bitfield struct bindgen cannot derive Debug for.
        .opaque_type("rte_l2tpv2_.*")
        .opaque_type("rte_gtp_.*")
        .default_enum_style(bindgen::EnumVariation::Consts)
        .prepend_enum_name(false)
        .use_core()
        // Evaluate macros cexpr cannot (RTE_BIT64-based flags such as
        // RTE_ETH_RSS_IP) by compiling them with clang.
        .clang_macro_fallback()
        .derive_default(true)
        .layout_tests(true)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
    let bindings = builder.generate().expect("dpdk-sys: bindgen failed");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("bindings.rs");
    bindings.write_to_file(&out).expect("dpdk-sys: writing bindings.rs");
}

/// Exports build-time facts about the DPDK found, for `include!` in lib.rs.
fn write_consts(lib: &pkg_config::Library) {
    let pmd_dir = env::var("DPDK_PMD_DIR").ok().or_else(find_pmd_dir);
    let pmd_dir = match pmd_dir {
        Some(d) => format!("Some({d:?})"),
        None => "None".into(),
    };
    let consts = format!(
        "/// Version of the DPDK these bindings were generated from (pkg-config).\n\
         pub const DPDK_VERSION: &str = {:?};\n\
         /// Directory holding the shared poll-mode drivers (`<libdir>/dpdk/pmds-<abi>`),\n\
         /// or `DPDK_PMD_DIR` at build time; `None` if not found.\n\
         pub const PMD_DIR: Option<&str> = {pmd_dir};\n",
        lib.version
    );
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("consts.rs");
    std::fs::write(out, consts).expect("dpdk-sys: writing consts.rs");
}

/// `<libdir>/dpdk/pmds-*`: the one directory DPDK's meson build installs
/// shared drivers to. None if there is not exactly one.
fn find_pmd_dir() -> Option<String> {
    let libdir = pkg_config_output(&["--variable=libdir", "libdpdk"]);
    let base = Path::new(libdir.trim()).join("dpdk");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&base)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir() && p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("pmds-")))
        .collect();
    if dirs.len() != 1 {
        return None;
    }
    dirs.pop().map(|p| p.to_string_lossy().into_owned())
}
