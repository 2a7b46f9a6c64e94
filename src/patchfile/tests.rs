use super::*;

#[test]
fn varints_round_trip_and_reject_overlong() {
    for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
        let mut b = Vec::new();
        write_varint(&mut b, v).unwrap();
        assert_eq!(read_varint(&mut &b[..]).unwrap(), v);
    }
    assert!(read_varint(&mut &[0xffu8; 11][..]).is_err());
    assert!(read_varint(&mut &[0x80u8][..]).is_err());
    for v in [0i64, 1, -1, 1000, -1000, i64::MAX, i64::MIN] {
        assert_eq!(unzigzag(zigzag(v)), v);
    }
}

mod props {
    use super::super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_varint_round_trips(v in any::<u64>(), i in any::<i64>()) {
            let mut b = Vec::new();
            write_varint(&mut b, v).unwrap();
            prop_assert!(b.len() <= 10);
            prop_assert_eq!(read_varint(&mut &b[..]).unwrap(), v);
            prop_assert_eq!(unzigzag(zigzag(i)), i);
        }

        #[test]
        fn no_bytes_make_a_varint_read_panic_or_run_past_ten_bytes(b in proptest::collection::vec(any::<u8>(), 0..16)) {
            let mut r = &b[..];
            if read_varint(&mut r).is_ok() {
                prop_assert!(b.len() - r.len() <= 10);
            }
        }
    }
}
