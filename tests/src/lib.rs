//! End-to-end labs; see e2e/.
