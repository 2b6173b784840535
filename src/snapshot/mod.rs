//! The snapshot sources: the registry's files as they are in the working copy ([`work`]) or in one
//! commit ([`commit`]), behind one [`work::Source`] trait. Uses: `git`, `format`.

pub mod commit;
pub(crate) mod kept_tree;
pub mod matcher;
pub mod overlay;
pub mod work;
