//! A CSV file of numeric features with a 0/1 label column, read for `portcullis model eval`.

use std::path::Path;

use anyhow::{bail, Context};
use portcullis_engine::anomaly::FeatureMatrix;

/// The features and labels of a labelled CSV file.
#[derive(Debug)]
pub struct LabelledRows {
    /// The names of the feature columns, in order.
    pub features: Vec<String>,
    pub matrix: FeatureMatrix,
    /// True where the label column says 1 (an anomaly).
    pub labels: Vec<bool>,
}

/// Reads `path`: a header row, then rows whose every column other than `label` and those in
/// `exclude` is a number. Errors name the line and column.
pub fn read(path: &Path, label: &str, exclude: &[String]) -> anyhow::Result<LabelledRows> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let header = reader
        .headers()
        .with_context(|| format!("{}: no header row", path.display()))?
        .clone();
    let Some(label_at) = header.iter().position(|h| h == label) else {
        bail!(
            "{}: no column named {label:?}; the columns are {}",
            path.display(),
            header.iter().collect::<Vec<_>>().join(", ")
        );
    };
    for name in exclude {
        if !header.iter().any(|h| h == name) {
            bail!("{}: --exclude {name:?}: no such column", path.display());
        }
    }
    let feature_at: Vec<usize> = (0..header.len())
        .filter(|&i| i != label_at && !exclude.iter().any(|e| e == &header[i]))
        .collect();
    let features: Vec<String> = feature_at.iter().map(|&i| header[i].to_string()).collect();
    if features.is_empty() {
        bail!("{}: no feature columns besides the label", path.display());
    }
    let mut matrix = FeatureMatrix::new(features.len())?;
    let mut labels = Vec::new();
    let mut row = Vec::with_capacity(features.len());
    for record in reader.records() {
        let record = record.with_context(|| format!("{}: unreadable row", path.display()))?;
        let line = record.position().map_or(0, |p| p.line());
        labels.push(match record.get(label_at) {
            Some("1") | Some("1.0") => true,
            Some("0") | Some("0.0") => false,
            other => bail!(
                "{}, line {line}: the label {label:?} must be 0 or 1, got {:?}",
                path.display(),
                other.unwrap_or("")
            ),
        });
        row.clear();
        for (&i, name) in feature_at.iter().zip(&features) {
            let text = record.get(i).unwrap_or("");
            match text.parse::<f64>() {
                Ok(v) if v.is_finite() => row.push(v),
                _ => bail!(
                    "{}, line {line}, column {name:?}: {text:?} is not a finite number",
                    path.display()
                ),
            }
        }
        matrix.push(&row)?;
    }
    Ok(LabelledRows {
        features,
        matrix,
        labels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn reads_features_and_labels_without_the_excluded() {
        let f = file("id,a,label,b\n7,1.5,0,2\n8,-3,1,4e2\n");
        let rows = read(f.path(), "label", &["id".into()]).unwrap();
        assert_eq!(rows.features, ["a", "b"]);
        assert_eq!(rows.matrix.row(1), &[-3.0, 400.0]);
        assert_eq!(rows.labels, [false, true]);
    }

    #[test]
    fn says_where_the_file_is_wrong() {
        let f = file("a,label\n1,0\nx,1\n");
        let err = read(f.path(), "label", &[]).unwrap_err().to_string();
        assert!(
            err.contains("line 3") && err.contains("\"a\"") && err.contains("\"x\""),
            "{err}"
        );
        let f = file("a,label\n1,2\n");
        let err = read(f.path(), "label", &[]).unwrap_err().to_string();
        assert!(err.contains("must be 0 or 1"), "{err}");
        let f = file("a,b\n1,0\n");
        let err = read(f.path(), "label", &[]).unwrap_err().to_string();
        assert!(
            err.contains("no column named \"label\"") && err.contains("a, b"),
            "{err}"
        );
        let f = file("a,label\n1,0\n2\n");
        assert!(read(f.path(), "label", &[]).is_err());
        let f = file("a,label\nNaN,0\n");
        assert!(read(f.path(), "label", &[]).is_err());
        let f = file("label\n1\n");
        assert!(read(f.path(), "label", &[]).is_err());
    }
}
