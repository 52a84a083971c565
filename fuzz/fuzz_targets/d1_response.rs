//! A D1 API answer through every decoder of `d1-export`: never a panic, every error displays,
//! no signed URL shows its query. The input is the status as three digits, then the body
//! (`200{"success":true,...}`); any three bytes map onto a status from 100 to 999.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(([hundreds, tens, ones], body)) = data.split_first_chunk::<3>() else {
        return;
    };
    let digit = |b: &u8| u16::from(b.wrapping_sub(b'0') % 10);
    let status =
        (u16::from(hundreds.wrapping_sub(b'1') % 9) + 1) * 100 + digit(tens) * 10 + digit(ones);
    d1_export::fuzz_decode(status, body);
});
