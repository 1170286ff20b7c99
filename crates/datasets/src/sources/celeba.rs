//! CelebA's aligned faces (Liu et al., 2015) as the CUHK page distributes them, under `data/celeba/`:
//!
//! - `img_align_celeba/000001.jpg` … `202599.jpg`: 178×218 JPEGs, faces aligned by the eyes;
//! - `list_attr_celeba.txt`: line 1 the image count, line 2 the 40 attribute names, then one line per image,
//!   `000001.jpg -1  1  1 …`, with 40 values of 1 (has it) or -1 (has it not), separated by runs of spaces;
//! - `list_eval_partition.txt` (optional): `000001.jpg 0`, with 0 train, 1 validation, 2 test. Without it the
//!   official partition is applied by file number.
//!
//! CelebA has no class: the label is one binary attribute, chosen by name (1 → 1, -1 → 0). The train split is
//! partition 0 (162,770 faces) and the test split partition 2 (19,962); the validation partition (19,867) is
//! not read, because ss-InfoGAN selects no hyperparameters on it. Each face is centre-cropped to
//! [`FACE_CROP`]×[`FACE_CROP`] and resized to the dataset's 32×32 (see [`FIT`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ssinfogan_core::ImageSpec;

use crate::error::{DataError, Result};
use crate::source_kind::SourceKind;
use crate::sources::image_fit::{self, Fit};
use crate::split::Split;

/// The 40 attributes, spelled and ordered as in line 2 of `list_attr_celeba.txt`.
pub const ATTRIBUTES: [&str; 40] = [
    "5_o_Clock_Shadow",
    "Arched_Eyebrows",
    "Attractive",
    "Bags_Under_Eyes",
    "Bald",
    "Bangs",
    "Big_Lips",
    "Big_Nose",
    "Black_Hair",
    "Blond_Hair",
    "Blurry",
    "Brown_Hair",
    "Bushy_Eyebrows",
    "Chubby",
    "Double_Chin",
    "Eyeglasses",
    "Goatee",
    "Gray_Hair",
    "Heavy_Makeup",
    "High_Cheekbones",
    "Male",
    "Mouth_Slightly_Open",
    "Mustache",
    "Narrow_Eyes",
    "No_Beard",
    "Oval_Face",
    "Pale_Skin",
    "Pointy_Nose",
    "Receding_Hairline",
    "Rosy_Cheeks",
    "Sideburns",
    "Smiling",
    "Straight_Hair",
    "Wavy_Hair",
    "Wearing_Earrings",
    "Wearing_Hat",
    "Wearing_Lipstick",
    "Wearing_Necklace",
    "Wearing_Necktie",
    "Young",
];

pub const IMAGE_DIR: &str = "img_align_celeba";
pub const ATTRIBUTE_FILE: &str = "list_attr_celeba.txt";
pub const PARTITION_FILE: &str = "list_eval_partition.txt";

/// The side of the centred square kept from each 178×218 aligned face: the crop of the DCGAN face
/// experiments (Radford et al., 2016; carpedm20/DCGAN-tensorflow's `--crop` of 108), which keeps the face from
/// brow to chin and drops most of the background and hair, so 32×32 pixels are spent on the face.
pub const FACE_CROP: u32 = 108;
/// How CelebA faces are fitted to 32×32, locally and from the Hub alike.
pub const FIT: Fit = Fit::CentreCrop { side: FACE_CROP };

/// The last file number of each official partition (train 1–162,770, validation 162,771–182,637, test
/// 182,638–202,599), as in `list_eval_partition.txt`.
const LAST_TRAIN: u32 = 162_770;
const FIRST_VALID: u32 = LAST_TRAIN + 1;
const LAST_VALID: u32 = 182_637;
const FIRST_TEST: u32 = LAST_VALID + 1;
const LAST_TEST: u32 = 202_599;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partition {
    Train,
    Valid,
    Test,
}

impl Partition {
    /// The official partition of image `number` (`000001.jpg` is 1), or `None` past the last image.
    ///
    /// ```
    /// use ssinfogan_datasets::sources::celeba::Partition;
    /// assert_eq!(Partition::official(162_770), Some(Partition::Train));
    /// assert_eq!(Partition::official(182_638), Some(Partition::Test));
    /// ```
    pub fn official(number: u32) -> Option<Self> {
        match number {
            1..=LAST_TRAIN => Some(Self::Train),
            FIRST_VALID..=LAST_VALID => Some(Self::Valid),
            FIRST_TEST..=LAST_TEST => Some(Self::Test),
            _ => None,
        }
    }
}

/// Reads the train and test faces from `dir` with `attribute` as the label. A missing directory, or one with
/// neither `img_align_celeba/` nor `list_attr_celeba.txt`, is `Unavailable`; one with only one of them is an
/// error that names the other.
pub fn load(dir: &Path, attribute: &str, image: ImageSpec) -> Result<(Split, Split)> {
    if !dir.is_dir() {
        return Err(DataError::unavailable(SourceKind::Local, format!("no directory {}", dir.display())));
    }
    // Kaggle's copy unpacks to img_align_celeba/img_align_celeba/.
    let image_dir = [dir.join(IMAGE_DIR).join(IMAGE_DIR), dir.join(IMAGE_DIR)]
        .into_iter()
        .find(|d| d.is_dir())
        .unwrap_or_else(|| dir.join(IMAGE_DIR));
    let attribute_path = dir.join(ATTRIBUTE_FILE);
    match (image_dir.is_dir(), attribute_path.is_file()) {
        (false, false) => {
            return Err(DataError::unavailable(
                SourceKind::Local,
                format!("{} holds neither {IMAGE_DIR}/ nor {ATTRIBUTE_FILE}", dir.display()),
            ))
        }
        (true, false) | (false, true) => {
            let missing = if image_dir.is_dir() { ATTRIBUTE_FILE } else { IMAGE_DIR };
            return Err(DataError::bad_file(
                dir,
                format!(
                    "incomplete CelebA directory: missing {missing}; CelebA needs {IMAGE_DIR}/ and {ATTRIBUTE_FILE}"
                ),
            ));
        }
        (true, true) => {}
    }
    let labelled = read_attribute(&attribute_path, attribute)?;
    let partition_path = dir.join(PARTITION_FILE);
    let partitions = if partition_path.is_file() { Some(read_partitions(&partition_path)?) } else { None };

    let (mut train, mut test) = (Vec::new(), Vec::new());
    for face in labelled {
        let partition = match &partitions {
            Some(listed) => *listed.get(&face.file).ok_or_else(|| {
                DataError::bad_file(
                    &partition_path,
                    format!(
                        "does not list {} ({ATTRIBUTE_FILE} line {}); use the files of one release",
                        face.file, face.line
                    ),
                )
            })?,
            None => official_partition(&face.file).ok_or_else(|| {
                DataError::bad_file(
                    &attribute_path,
                    format!(
                        "line {}: cannot tell the partition of `{}` from its number (000001.jpg … 202599.jpg); add \
                         {PARTITION_FILE}",
                        face.line, face.file
                    ),
                )
            })?,
        };
        let path = image_dir.join(&face.file);
        if partition != Partition::Valid && !path.is_file() {
            return Err(DataError::bad_file(
                &path,
                format!("listed in {ATTRIBUTE_FILE} line {} but missing; unzip img_align_celeba.zip again", face.line),
            ));
        }
        match partition {
            Partition::Train => train.push((path, face.label)),
            Partition::Test => test.push((path, face.label)),
            Partition::Valid => {}
        }
    }
    tracing::info!(
        "CelebA: decoding {} train and {} test faces ({FACE_CROP}×{FACE_CROP} centre crop to {image})",
        train.len(),
        test.len()
    );
    Ok((decode(&train, image, "CelebA train")?, decode(&test, image, "CelebA test")?))
}

fn official_partition(file: &str) -> Option<Partition> {
    file.strip_suffix(".jpg").and_then(|stem| stem.parse::<u32>().ok()).and_then(Partition::official)
}

fn decode(faces: &[(PathBuf, u8)], image: ImageSpec, what: &str) -> Result<Split> {
    let images = image_fit::decode_in_parallel(faces, image, what, |(path, _), slot| {
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        image_fit::decode_into(&bytes, image, FIT, slot).map_err(|problem| DataError::bad_file(path, problem))
    })?;
    Ok(Split { images, labels: faces.iter().map(|(_, label)| *label).collect() })
}

/// One face of the attribute file: its file name, its label (the chosen attribute, 1 → 1, -1 → 0) and the
/// line it was read from (1-based), for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelledFace {
    pub file: String,
    pub label: u8,
    pub line: usize,
}

/// Reads `list_attr_celeba.txt`, checking every value of every row (not only the chosen attribute's), so a
/// damaged file is found whichever attribute is asked for.
pub fn read_attribute(path: &Path, attribute: &str) -> Result<Vec<LabelledFace>> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    let bad = |line: usize, problem: String| DataError::bad_file(path, format!("line {line}: {problem}"));
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    let count_line = lines.next().map(|(_, l)| l.trim()).unwrap_or_default();
    let count: usize = count_line
        .parse()
        .map_err(|_| bad(1, format!("`{count_line}` is not the image count; this is not list_attr_celeba.txt")))?;
    let names: Vec<&str> = lines.next().map(|(_, l)| l.split_whitespace().collect()).unwrap_or_default();
    if names.len() != ATTRIBUTES.len() {
        return Err(bad(2, format!("{} attribute names, expected the 40 of CelebA", names.len())));
    }
    let column = names
        .iter()
        .position(|n| *n == attribute)
        .ok_or_else(|| bad(2, format!("no attribute `{attribute}`; the file names {}", names.join(" "))))?;
    // Not `with_capacity(count)`: the count is the file's claim, checked against the rows below.
    let mut faces = Vec::new();
    for (line, text) in lines.filter(|(_, l)| !l.trim().is_empty()) {
        let mut fields = text.split_whitespace();
        let file = fields.next().unwrap_or_default();
        let values: Vec<&str> = fields.collect();
        if values.len() != names.len() {
            return Err(bad(line, format!("`{file}` has {} values, expected 40", values.len())));
        }
        let mut label = 0;
        for (i, value) in values.iter().enumerate() {
            let present = match *value {
                "1" => 1,
                "-1" => 0,
                other => {
                    return Err(bad(line, format!("`{file}` has value `{other}` for {}; values are 1 or -1", names[i])))
                }
            };
            if i == column {
                label = present;
            }
        }
        faces.push(LabelledFace { file: file.to_string(), label, line });
    }
    if faces.len() != count {
        return Err(DataError::bad_file(
            path,
            format!(
                "line 1 says {count} images but {} rows follow; the file is damaged, download it again",
                faces.len()
            ),
        ));
    }
    Ok(faces)
}

/// Reads `list_eval_partition.txt`: file name → partition.
pub fn read_partitions(path: &Path) -> Result<HashMap<String, Partition>> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    let mut partitions = HashMap::new();
    for (index, text) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let fields: Vec<&str> = text.split_whitespace().collect();
        let partition = match fields.as_slice() {
            [_, "0"] => Partition::Train,
            [_, "1"] => Partition::Valid,
            [_, "2"] => Partition::Test,
            _ => {
                return Err(DataError::bad_file(
                    path,
                    format!("line {}: `{}` is not `<file> <0|1|2>`", index + 1, text.trim()),
                ))
            }
        };
        partitions.insert(fields[0].to_string(), partition);
    }
    Ok(partitions)
}
