//! Values that a pass writes in place before anything reads them.
//!
//! The outputs of the element-wise passes, the layout changes, im2row and the matrix products are tens of
//! megabytes a training step, and zero-filling each first would be one more pass over it. They are written into
//! a vector's spare capacity instead, as `MaybeUninit<f32>` (writing is safe), and read as f32 only through an
//! `unsafe` step at which the caller names the pass that wrote every value.

use std::mem::MaybeUninit;

/// What every value of an [`Unwritten`] room holds in debug builds until it is written: a signalling NaN. f32
/// arithmetic never returns one (an operation on a signalling NaN returns a quiet NaN), so a value that still
/// holds this pattern after a pass was not written by it, unless the pass copied it verbatim from an input that
/// held this very pattern, which only an unwritten value does.
const UNWRITTEN: u32 = 0x7f80_0bad;

/// Room for `len` values in the spare capacity of a vector, which a pass writes before they are read.
///
/// Invariant: every value is written before it is read as f32. Writing goes through [`Unwritten::values`]
/// (`&mut [MaybeUninit<f32>]`); reading goes through [`Unwritten::assume_written`], or [`written_part`] for a
/// part that one thread reads before the rest of the room is written, and both are `unsafe`: the caller states
/// which pass wrote every value. In debug builds the room starts as [`UNWRITTEN`] values and both assert that
/// none is left, so a pass that skips a value fails every test that runs it.
pub(crate) struct Unwritten<'a> {
    vec: &'a mut Vec<f32>,
    len: usize,
}

impl<'a> Unwritten<'a> {
    /// `vec` emptied, with room for `len` values: no new allocation when it has the room already (a thread's
    /// scratch buffer, from one block of work to the next).
    pub(crate) fn new(vec: &'a mut Vec<f32>, len: usize) -> Self {
        vec.clear();
        vec.reserve(len);
        if cfg!(debug_assertions) {
            vec.spare_capacity_mut()[..len].fill(MaybeUninit::new(f32::from_bits(UNWRITTEN)));
        }
        Self { vec, len }
    }

    /// The values to write.
    pub(crate) fn values(&mut self) -> &mut [MaybeUninit<f32>] {
        &mut self.vec.spare_capacity_mut()[..self.len]
    }

    /// The vector, its values the `len` written ones.
    ///
    /// # Safety
    /// Every value of [`Unwritten::values`] was written.
    pub(crate) unsafe fn assume_written(mut self) -> &'a [f32] {
        let len = self.len;
        // SAFETY: every value of the room was written (this function's contract).
        let _ = unsafe { written_part(self.values()) };
        // SAFETY: the capacity holds `len` values (`new` reserved them), all written (this function's contract).
        unsafe { self.vec.set_len(len) };
        let vec: &'a Vec<f32> = self.vec;
        vec
    }
}

/// `part` as f32 values, once every one of them was written: a block's part of an [`Unwritten`] room, which
/// the block reads before the rest of the room is written, or the destination of a matrix product.
///
/// # Safety
/// Every value of `part` was written.
pub(crate) unsafe fn written_part(part: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    // SAFETY: `MaybeUninit<f32>` has the size and alignment of f32, and every value is initialised (this
    // function's contract); the slice keeps `part`'s exclusive borrow.
    let values = unsafe { &mut *(std::ptr::from_mut(part) as *mut [f32]) };
    debug_assert!(
        !values.iter().any(|v| v.to_bits() == UNWRITTEN),
        "value {:?} of {} was read before it was written",
        values.iter().position(|v| v.to_bits() == UNWRITTEN),
        values.len()
    );
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `len` values, every one but `skip`, into `vec`'s room and reads them.
    fn write_all_but(vec: &mut Vec<f32>, len: usize, skip: Option<usize>) -> &[f32] {
        let mut room = Unwritten::new(vec, len);
        for (i, value) in room.values().iter_mut().enumerate() {
            if Some(i) != skip {
                value.write(i as f32 + 0.5);
            }
        }
        // SAFETY: every value is written when `skip` is `None`. With a value skipped (the tests below, debug
        // builds only) it still holds `UNWRITTEN` from `Unwritten::new`, so nothing uninitialised is read
        // before the check fails.
        unsafe { room.assume_written() }
    }

    #[test]
    fn a_room_holds_the_values_written_and_reuses_its_allocation() {
        let mut vec = Vec::new();
        assert_eq!(write_all_but(&mut vec, 4, None), [0.5, 1.5, 2.5, 3.5]);
        let allocation = vec.as_ptr();
        assert_eq!(write_all_but(&mut vec, 3, None), [0.5, 1.5, 2.5]);
        assert_eq!((vec.as_ptr(), vec.len()), (allocation, 3), "the same allocation, three values");
        assert_eq!(write_all_but(&mut vec, 0, None), [0f32; 0]);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "value Some(2) of 4 was read before it was written")]
    fn a_pass_that_skips_a_value_fails_in_a_debug_build() {
        write_all_but(&mut Vec::new(), 4, Some(2));
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "value Some(1) of 3 was read before it was written")]
    fn a_reused_room_does_not_pass_off_the_values_of_its_last_use_as_written() {
        // The first use writes every value; the second skips one that the first wrote, which its room no
        // longer holds.
        let mut vec = Vec::new();
        write_all_but(&mut vec, 3, None);
        write_all_but(&mut vec, 3, Some(1));
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "value Some(0) of 2 was read before it was written")]
    fn a_part_read_before_it_is_written_fails_in_a_debug_build() {
        let mut vec = Vec::new();
        let mut room = Unwritten::new(&mut vec, 4);
        let (first, second) = room.values().split_at_mut(2);
        first.iter_mut().for_each(|v| {
            v.write(1.0);
        });
        // SAFETY: deliberately false for `second`, which holds `UNWRITTEN` (a debug build: see `write_all_but`).
        let _ = unsafe { (written_part(first), written_part(second)) };
    }
}
