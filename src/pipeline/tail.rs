//! The stages after dedupe (and a sort by fields): numbering in one or two passes, the sort
//! by number, guide matching and the writers. `run_proxy` feeds it chunks in output order.

use anyhow::Result;

use super::{Clocks, guide, number};
use crate::model::Channel;
use crate::output::m3u::M3uWriter;

/// The stages after dedupe (and a sort by fields): numbering (one or two passes), the sort
/// by number, guide matching and the writer (or the logo spool).
pub(super) struct Tail {
    pub(super) clocks: Clocks,
    pub(super) numberer: Option<number::Numberer>,
    pub(super) first_pass: Option<crate::memory::sorter::Sorter>,
    pub(super) by_number: Option<crate::memory::sorter::Sorter>,
    pub(super) guide: Option<guide::GuideStage>,
    pub(super) writer: Option<M3uWriter>,
    pub(super) logos: Option<crate::logos::LogoPass>,
    pub(super) hdhr: Option<crate::output::hdhr::HdhrWriter>,
}

impl Tail {
    /// Channels in output order, not yet numbered.
    pub(super) fn ordered(&mut self, chunk: Vec<Channel>) -> Result<()> {
        if let (Some(spool), Some(n)) = (self.first_pass.as_mut(), self.numberer.as_mut()) {
            self.clocks.number.time(|| {
                chunk.into_iter().try_for_each(|ch| {
                    n.observe(&ch)?;
                    spool.push(ch)
                })
            })?;
            n.account();
            return Ok(());
        }
        self.numbered(chunk)
    }

    /// Number channels in output order, then sort them by number or emit them.
    pub(super) fn numbered(&mut self, mut chunk: Vec<Channel>) -> Result<()> {
        if let Some(n) = self.numberer.as_mut() {
            self.clocks.number.items += chunk.len() as u64;
            self.clocks
                .number
                .time(|| chunk.iter_mut().try_for_each(|ch| n.assign(ch).map(drop)))?;
            n.account();
        }
        if let Some(sorter) = self.by_number.as_mut() {
            self.clocks.sort.items += chunk.len() as u64;
            return self
                .clocks
                .sort
                .time(|| chunk.into_iter().try_for_each(|ch| sorter.push(ch)));
        }
        self.emit(chunk)
    }

    /// Match guides and write channels in their final order (to the logo spool when
    /// prefetching logos).
    pub(super) fn emit(&mut self, mut chunk: Vec<Channel>) -> Result<()> {
        let clocks = &mut self.clocks;
        if let Some(g) = self.guide.as_mut() {
            clocks.guide_match.items += chunk.len() as u64;
            clocks.guide_match.time(|| g.visit_chunk(&mut chunk));
        }
        clocks.write.items += chunk.len() as u64;
        if let Some(h) = self.hdhr.as_mut() {
            clocks
                .write
                .time(|| chunk.iter().try_for_each(|ch| h.write(ch)))?;
        }
        if let Some(pass) = self.logos.as_mut() {
            clocks
                .write
                .time(|| chunk.into_iter().try_for_each(|ch| pass.write(ch)))?;
        } else if let Some(w) = self.writer.as_mut() {
            clocks
                .write
                .time(|| chunk.iter().try_for_each(|ch| w.write(ch)))?;
        }
        Ok(())
    }
}
