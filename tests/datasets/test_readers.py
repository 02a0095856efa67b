import numpy as np
import pytest
from PIL import Image

from distill.datasets.emotions import FER2013, canonical, class_alignment, parse_mapping
from distill.datasets.readers import detect_reader, read_csv_labels, read_fer2013, read_folder, read_pubfig83, read_rafd
from distill.errors import DistillError


def _img(path, size=(40, 40)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (120, 90, 60)).save(path)


def test_synonyms_map_to_canonical_names():
    assert [canonical(n) for n in ("angry", "Happy", "SAD", "surprised", "HA", "contempt")] == [
        "anger",
        "happiness",
        "sadness",
        "surprise",
        "happiness",
        "contempt",
    ]
    assert canonical("bored") is None


def test_alignment_reports_one_sided_classes():
    shared, model_only, data_only = class_alignment(list(FER2013), ["anger", "contempt", "happiness"])
    assert [n for *_, n in shared] == ["anger", "happiness"]
    assert "contempt" in data_only and "fear" in model_only
    shared, _, _ = class_alignment(["joyful"], ["happiness"], parse_mapping("joyful=happy"))
    assert shared == [(0, 0, "happiness")]


def test_folder_is_recursive_any_case_and_stable(tmp_path):
    for name in ("b/2.JPG", "a/1.png", "c.WebP", "d.txt", "a/.hidden.jpg"):
        _img(tmp_path / name) if not name.endswith(".txt") else (tmp_path / name).write_text("x")
    assert [s.key for s in read_folder(tmp_path)] == ["a/1.png", "b/2.JPG", "c.WebP"]
    assert [s.meta["identity"] for s in read_pubfig83(tmp_path)] == ["a", "b", ""]


def test_rafd_names_filters_and_labels(tmp_path):
    names = [
        "Rafd090_01_Caucasian_female_angry_frontal",
        "Rafd045_02_Moroccan_male_happy_left",
        "Rafd000_03_Caucasian_male_sad_right",
        "Rafd180_04_Kid_female_contemptuous_frontal",
        "Rafd135_05_Caucasian_female_surprised_frontal",
    ]
    for n in names:
        _img(tmp_path / f"{n}.jpg")
    samples = read_rafd(tmp_path)
    assert [s.label for s in samples] == ["happiness", "anger", "surprise"]  # profiles 0/180 dropped
    assert samples[0].meta == {"angle": 45, "subject": "02", "ethnicity": "Moroccan", "gender": "male", "gaze": "left"}
    assert len(read_rafd(tmp_path, angles=())) == 5
    assert [s.label for s in read_rafd(tmp_path, gazes=("frontal",))] == ["anger", "surprise"]
    assert detect_reader(tmp_path) == "rafd"


def test_csv_reader_and_unknown_labels(tmp_path):
    _img(tmp_path / "images" / "x.jpg")
    (tmp_path / "labels.csv").write_text("image,emotion\nx.jpg,HAPPY\n")
    assert [(s.key, s.label) for s in read_csv_labels(tmp_path)] == [("x.jpg", "happiness")]
    assert detect_reader(tmp_path) == "csv"
    (tmp_path / "labels.csv").write_text("image,emotion\nx.jpg,bored\n")
    with pytest.raises(DistillError, match="unknown emotion"):
        read_csv_labels(tmp_path)


def test_a_labels_csv_with_a_byte_order_mark_reads_as_without(tmp_path):
    _img(tmp_path / "images" / "x.jpg")
    (tmp_path / "labels.csv").write_bytes("\ufeffimage,emotion\nx.jpg,happy\n".encode())  # as spreadsheets save
    assert [(s.key, s.label) for s in read_csv_labels(tmp_path)] == [("x.jpg", "happiness")]


def test_fer2013_csv(tmp_path):
    pixels = " ".join(str(v) for v in range(16))
    (tmp_path / "fer2013.csv").write_text(f"emotion,pixels,Usage\n3,{pixels},Training\n6,{pixels},PublicTest\n")
    samples = read_fer2013(tmp_path)
    assert [s.label for s in samples] == ["happiness", "neutral"]
    assert samples[0].pixels.shape == (4, 4) and samples[0].pixels.dtype == np.uint8
    assert len(read_fer2013(tmp_path / "fer2013.csv", usage="PublicTest")) == 1


def test_linked_sub_folders_are_followed_once_and_loops_do_not_trap(tmp_path):
    from distill.datasets.readers import list_images

    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "deep").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(elsewhere / "a.jpg")
    Image.new("RGB", (8, 8)).save(elsewhere / "deep" / "b.png")
    pool = tmp_path / "pool"
    (pool / "own").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(pool / "own" / "c.jpg")
    (pool / "linked").symlink_to(elsewhere, target_is_directory=True)  # the ordinary way to pool datasets
    (elsewhere / "deep" / "back").symlink_to(pool, target_is_directory=True)  # a loop back to the pool
    (pool / ".hidden").mkdir()
    Image.new("RGB", (8, 8)).save(pool / ".hidden" / "d.jpg")
    found = [p.relative_to(pool).as_posix() for p in list_images(pool)]
    assert found == ["linked/a.jpg", "linked/deep/b.png", "own/c.jpg"]
