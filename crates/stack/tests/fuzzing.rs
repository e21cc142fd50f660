//! The fuzz targets' drivers as property tests, so `cargo test` runs them.

use proptest::prelude::*;

/// A correct `/noise` proposal, the prefix that gets random bytes past
/// multistream-select.
const NOISE_PROPOSAL: &[u8] = b"\x13/multistream/1.0.0\n\x07/noise\n";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn inbound_setup_survives_random_bytes(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        onetrip_stack::fuzzing::inbound(&data);
    }

    #[test]
    fn inbound_setup_survives_random_noise_messages(
        data in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let mut bytes = NOISE_PROPOSAL.to_vec();
        bytes.extend_from_slice(&data);
        onetrip_stack::fuzzing::inbound(&bytes);
    }

    #[test]
    fn addresses_survive_random_bytes(data in proptest::collection::vec(any::<u8>(), 0..64)) {
        onetrip_stack::fuzzing::address(&data);
    }
}
