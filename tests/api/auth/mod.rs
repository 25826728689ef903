//! Authentication: token verification against a fake SSO with real keys (`tokens`), and what a
//! ChatKit client meets on `POST /chatkit` (`chatkit`).

mod chatkit;
mod tokens;
