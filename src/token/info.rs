//! Reading a token's information (C_GetTokenInfo) through a token that another process is busy
//! with: SoftHSM rewrites a token's file when a login changes its PIN flags, and a process reading
//! it meanwhile gets CKR_GENERAL_ERROR. Such a read is tried again briefly; every other answer is
//! returned as it came.

use std::time::Duration;

use cryptoki::context::Pkcs11;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::slot::{Slot, TokenInfo};

/// How many reads, and the pause after the first failed one (it grows each time).
const READS: u32 = 5;
const FIRST_PAUSE: Duration = Duration::from_millis(20);

/// C_GetTokenInfo, read again for up to about half a second while it fails with
/// CKR_GENERAL_ERROR or CKR_FUNCTION_FAILED.
pub fn token_info(pkcs11: &Pkcs11, slot: Slot) -> Result<TokenInfo, CkError> {
    let mut read = 1;
    loop {
        match pkcs11.get_token_info(slot) {
            Err(CkError::Pkcs11(RvError::GeneralError | RvError::FunctionFailed, _))
                if read < READS =>
            {
                std::thread::sleep(FIRST_PAUSE * read * read);
                read += 1;
            }
            other => return other,
        }
    }
}
