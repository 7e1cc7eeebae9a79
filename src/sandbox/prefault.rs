//! Pages of a guest's memory copied in before it runs. A snapshot's memory is mapped
//! copy-on-write from its compiled file, and CPython writes some 700 of its pages before it
//! does anything of its own: a page fault each, two where it read the page first. The pages
//! a run that does nothing writes are recorded when the bundle is built (`record`); every
//! later run of the snapshot has them copied in one `madvise(MADV_POPULATE_WRITE)` before
//! it starts (`apply`). Only when the copies are made changes, never what they hold.

use std::fmt;

/// The unit of a run: 4 KiB, whatever the host's page size.
const PAGE: usize = 4096;

/// Runs of 4 KiB pages of a linear memory, sorted, as `start+count` words separated by
/// spaces in a bundle manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRuns(Vec<(u32, u32)>);

impl PageRuns {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of pages in all runs.
    pub fn pages(&self) -> u64 {
        self.0.iter().map(|&(_, count)| u64::from(count)).sum()
    }

    /// The runs of `pages`, indexes of 4 KiB pages in increasing order.
    fn from_pages(pages: impl IntoIterator<Item = u32>) -> Self {
        let mut runs: Vec<(u32, u32)> = Vec::new();
        for page in pages {
            match runs.last_mut() {
                Some((start, count)) if *start + *count == page => *count += 1,
                _ => runs.push((page, 1)),
            }
        }
        PageRuns(runs)
    }

    /// The pages of the memory at `base` (`size` bytes, as the guest left it) that are the
    /// process's own copies: written since they were mapped from the snapshot's file, or
    /// first touched by a write. Read from `/proc/self/pagemap`; empty elsewhere than Linux
    /// and where it cannot be read (the runs are only an optimisation).
    ///
    /// # Safety
    /// `base..base + size` must be a live mapping of this process (a guest's memory whose
    /// store is not in use); nothing is read or written there, only its page table entries.
    pub unsafe fn record(base: *const u8, size: usize) -> Self {
        #[cfg(target_os = "linux")]
        {
            linux::record(base as usize, size).unwrap_or_else(|error| {
                tracing::debug!(%error, "cannot read the guest's page map");
                PageRuns::default()
            })
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = (base, size);
            PageRuns::default()
        }
    }

    /// Copies in the pages of the runs that lie within the memory at `base` (`size` bytes
    /// accessible). Runs past its end are ignored; a kernel without `MADV_POPULATE_WRITE`
    /// (before Linux 5.14) leaves the faults to happen as they would.
    ///
    /// # Safety
    /// `base..base + size` must be the accessible, writable bytes of a guest's memory that
    /// is not in use while this runs.
    pub unsafe fn apply(&self, base: *mut u8, size: usize) {
        #[cfg(target_os = "linux")]
        {
            let host = rustix::param::page_size();
            for &(start, count) in &self.0 {
                let start = start as usize * PAGE;
                let end = start.saturating_add(count as usize * PAGE).min(size);
                // Host pages larger than 4 KiB: the whole pages the run touches.
                let (start, end) = (start / host * host, end.div_ceil(host) * host);
                if start >= end || end > size {
                    continue;
                }
                // SAFETY: `start..end` lies within the memory (checked above; `size` is a
                // multiple of the host page size, as every wasm memory's is); populating
                // reads each page and writes it back unchanged, as a fault would.
                let result = unsafe {
                    libc::madvise(
                        base.add(start).cast(),
                        end - start,
                        libc::MADV_POPULATE_WRITE,
                    )
                };
                if result != 0 {
                    tracing::debug!(
                        error = %std::io::Error::last_os_error(),
                        "cannot pre-copy guest pages"
                    );
                    return;
                }
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = (base, size);
        }
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::fs::File;
    use std::os::unix::fs::FileExt;

    use super::{PAGE, PageRuns};

    /// Bits of a `pagemap` entry (the kernel's Documentation/admin-guide/mm/pagemap.rst).
    const PRESENT: u64 = 1 << 63;
    const FILE_OR_SHARED: u64 = 1 << 61;
    const EXCLUSIVE: u64 = 1 << 56;

    pub(super) fn record(base: usize, size: usize) -> std::io::Result<PageRuns> {
        let host = rustix::param::page_size();
        let pages = size / host;
        let mut entries = vec![0u8; pages * 8];
        File::open("/proc/self/pagemap")?.read_exact_at(&mut entries, (base / host * 8) as u64)?;
        // A page of the process's own: present, anonymous (a private copy, not the file's
        // page nor the shared zero page) and mapped by it alone.
        let own = entries
            .chunks_exact(8)
            .enumerate()
            .filter_map(|(i, entry)| {
                let entry = u64::from_le_bytes(entry.try_into().expect("chunks of 8 bytes"));
                (entry & (PRESENT | FILE_OR_SHARED | EXCLUSIVE) == PRESENT | EXCLUSIVE).then_some(i)
            });
        let per_host = host / PAGE;
        Ok(PageRuns::from_pages(own.flat_map(|i| {
            (i * per_host..(i + 1) * per_host).filter_map(|page| u32::try_from(page).ok())
        })))
    }
}

impl fmt::Display for PageRuns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (start, count)) in self.0.iter().enumerate() {
            let space = if i == 0 { "" } else { " " };
            write!(f, "{space}{start}+{count}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for PageRuns {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let mut runs: Vec<(u32, u32)> = Vec::new();
        for word in text.split_whitespace() {
            let bad = || format!("{word:?} is not a run of pages (`start+count`)");
            let (start, count) = word.split_once('+').ok_or_else(bad)?;
            let start: u32 = start.parse().map_err(|_| bad())?;
            let count: u32 = count.parse().map_err(|_| bad())?;
            let after_last = runs
                .last()
                .is_none_or(|&(s, c)| u64::from(s) + u64::from(c) <= u64::from(start));
            if count == 0 || !after_last || start.checked_add(count).is_none() {
                return Err(format!(
                    "{word:?}: runs must be non-empty, sorted and apart"
                ));
            }
            runs.push((start, count));
        }
        Ok(PageRuns(runs))
    }
}

impl serde::Serialize for PageRuns {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for PageRuns {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_round_trip_through_their_text() {
        let runs = PageRuns::from_pages([3, 4, 5, 9, 11, 12]);
        assert_eq!(runs.to_string(), "3+3 9+1 11+2");
        assert_eq!("3+3 9+1 11+2".parse::<PageRuns>().unwrap(), runs);
        assert_eq!(runs.pages(), 6);
        assert!("".parse::<PageRuns>().unwrap().is_empty());
        for bad in ["3", "3+0", "5+1 3+1", "3+3 4+1", "x+1", "4294967295+1"] {
            assert!(bad.parse::<PageRuns>().is_err(), "{bad}");
        }
    }

    /// A private copy-on-write file mapping, as a snapshot's memory is: the pages written
    /// are recorded, those only read are not; applying the runs to a fresh mapping makes
    /// them the process's own without changing a byte.
    #[cfg(target_os = "linux")]
    #[test]
    fn records_written_pages_and_applies_them_unchanged() {
        use std::os::fd::AsRawFd;

        let host = rustix::param::page_size();
        let size = 16 * host;
        let file = tempfile::tempfile().unwrap();
        let contents: Vec<u8> = (0..size).map(|i| (i / host) as u8 + 1).collect();
        std::io::Write::write_all(&mut &file, &contents).unwrap();
        let map = || {
            // SAFETY: a fresh private mapping of a file of `size` bytes.
            let base = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    size,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE,
                    file.as_raw_fd(),
                    0,
                )
            };
            assert_ne!(base, libc::MAP_FAILED);
            base.cast::<u8>()
        };

        let first = map();
        // SAFETY: reads and writes within the mapping made above.
        unsafe {
            for page in [1, 2, 7] {
                first.add(page * host).write_volatile(0xaa);
            }
            let _ = first.add(4 * host).read_volatile();
        }
        // SAFETY: the mapping is live and nothing else uses it.
        let runs = unsafe { PageRuns::record(first, size) };
        let per = (host / PAGE) as u32;
        let expected =
            PageRuns::from_pages([1u32, 2, 7].iter().flat_map(|&p| p * per..(p + 1) * per));
        assert_eq!(runs, expected);

        let second = map();
        // SAFETY: the same for the second mapping.
        let (copied, bytes) = unsafe {
            runs.apply(second, size);
            let copied = PageRuns::record(second, size);
            (copied, std::slice::from_raw_parts(second, size).to_vec())
        };
        assert_eq!(copied, runs, "the pages applied are the process's own");
        assert_eq!(bytes, contents, "and hold what the file holds");
        // SAFETY: both mappings were made above and are no longer used.
        unsafe {
            libc::munmap(first.cast(), size);
            libc::munmap(second.cast(), size);
        }
    }
}
