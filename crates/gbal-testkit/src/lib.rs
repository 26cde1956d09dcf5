//! What every gbal crate's tests share. A dev-dependency only: no library of gbal depends on
//! it, and it is never published.

pub mod reference;
