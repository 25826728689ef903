//! The lesson index: every lesson of the book with its title, for the study page's tree.

use futures::StreamExt;
use serde::Serialize;

use super::ContentError;
use super::loader::Content;

/// How many lessons are loaded at once to read their titles (each is cached after the first).
const TITLE_CONCURRENCY: usize = 8;

/// One row of the lesson index.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct LessonEntry {
    pub path: String,
    pub title: String,
}

impl Content {
    /// Every lesson of the book with its title, sorted by path (the listing is cached: see
    /// [`Content::lesson_paths`]).
    pub async fn index(&self) -> Result<Vec<LessonEntry>, ContentError> {
        let paths = self.lesson_paths().await?;
        let mut entries: Vec<LessonEntry> = futures::stream::iter(paths.iter().cloned())
            .map(|path| async move {
                let title = match self.lesson(&path).await {
                    Ok(Some(lesson)) => lesson.title.clone(),
                    _ => fallback_title(path.as_str()),
                };
                LessonEntry {
                    path: path.to_string(),
                    title,
                }
            })
            .buffer_unordered(TITLE_CONCURRENCY)
            .collect()
            .await;
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(entries)
    }
}

/// The last path segment, for a lesson whose title cannot be read right now.
fn fallback_title(path: &str) -> String {
    path.rsplit('/')
        .next()
        .unwrap_or(path)
        .replace(['-', '_'], " ")
}

#[cfg(test)]
mod tests {
    use super::fallback_title;

    #[test]
    fn a_lesson_without_a_readable_title_is_named_after_its_last_segment() {
        assert_eq!(fallback_title("01-part/02-for_loops"), "02 for loops");
    }
}
