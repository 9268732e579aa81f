//! Imports of the real public datasets in `LONGTAIL_DATA_DIR` (default `../shared/data` beside the
//! project root), checked against the verified counts of its README. When the folder is missing
//! the tests print a note and pass (CI has it).

use std::collections::HashSet;
use std::path::PathBuf;

use longtail_data::{import, movielens_genres, read_vocab, ImportFormat, Imported, Interactions};

pub(crate) fn data_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("LONGTAIL_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data"))
        });
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "note: real data folder {} not found (set LONGTAIL_DATA_DIR); skipping",
            dir.display()
        );
        None
    }
}

fn check(im: &Imported, rows: usize, users: usize, items: usize) {
    let t = &im.interactions;
    t.validate().unwrap();
    assert_eq!(t.len(), rows);
    assert_eq!(t.ts.len(), rows);
    assert_eq!(t.rating.as_ref().map(Vec::len), Some(rows));
    assert_eq!(im.user_vocab.len(), users + 1);
    assert_eq!(im.item_vocab.len(), items + 1);
    assert_eq!(t.num_users(), users + 1);
    assert_eq!(t.num_items(), items + 1);
    assert_eq!(im.user_vocab[0], "");
    assert_eq!(im.item_vocab[0], "");
    // Dense ids appear in order of first appearance.
    let mut next = 1;
    for &u in &t.user {
        assert!(u <= next);
        if u == next {
            next += 1;
        }
    }
    let distinct: HashSet<&String> = im.user_vocab.iter().collect();
    assert_eq!(distinct.len(), users + 1);
}

#[test]
fn ml_100k_u_data() {
    let Some(dir) = data_dir() else { return };
    let im = import(ImportFormat::MovielensTsv, &dir.join("ml-100k/u.data")).unwrap();
    check(&im, 100_000, 943, 1_682);
    assert_eq!(im.user_vocab[1], "196");
    assert_eq!(im.item_vocab[1], "242");
    assert_eq!(im.interactions.ts[0], 881_250_949);
    let r = im.interactions.rating.as_ref().unwrap();
    assert_eq!(r.iter().filter(|&&x| x == 5.0).count(), 21_201);
    assert_eq!(*im.interactions.ts.iter().min().unwrap(), 874_724_710);
    assert_eq!(*im.interactions.ts.iter().max().unwrap(), 893_286_638);
}

#[test]
fn ml_1m_users_1_2999_gzip() {
    let Some(dir) = data_dir() else { return };
    let im = import(
        ImportFormat::MovielensDat,
        &dir.join("ml-1m/ratings_users1-2999.dat.gz"),
    )
    .unwrap();
    check(&im, 487_650, 2_999, 3_615);
    assert_eq!(im.user_vocab[1], "1");
    assert_eq!(im.user_vocab[2_999], "2999");
    let r = im.interactions.rating.as_ref().unwrap();
    assert_eq!(r.iter().filter(|&&x| x == 1.0).count(), 27_472);
    assert_eq!(*im.interactions.ts.iter().min().unwrap(), 970_620_734);
    assert_eq!(*im.interactions.ts.iter().max().unwrap(), 1_046_388_675);
}

#[test]
fn amazon_musical_instruments_csv() {
    let Some(dir) = data_dir() else { return };
    let im = import(
        ImportFormat::AmazonCsv,
        &dir.join("amazon-musical-instruments-5core-2014/Musical_Instruments_5.csv"),
    )
    .unwrap();
    check(&im, 10_261, 1_429, 900);
    // The file has CRLF endings and two extra columns: neither leaks into ids or values.
    assert_eq!(im.user_vocab[1], "A2IBPI20UZIR0U");
    assert_eq!(im.item_vocab[1], "1384719342");
    let r = im.interactions.rating.as_ref().unwrap();
    assert_eq!(r.iter().filter(|&&x| x == 5.0).count(), 6_938);
    assert_eq!(*im.interactions.ts.iter().min().unwrap(), 1_095_465_600);
    assert_eq!(*im.interactions.ts.iter().max().unwrap(), 1_405_987_200);
}

#[test]
fn movietweetings_100k() {
    let Some(dir) = data_dir() else { return };
    let im = import(
        ImportFormat::Movietweetings,
        &dir.join("movietweetings-100k/ratings.dat"),
    )
    .unwrap();
    check(&im, 100_000, 16_554, 10_506);
    assert_eq!(im.item_vocab[1], "1074638");
    let r = im.interactions.rating.as_ref().unwrap();
    assert!(r.iter().all(|&x| (0.0..=10.0).contains(&x)));
}

#[test]
fn real_import_parquet_and_vocab_round_trip() {
    let Some(dir) = data_dir() else { return };
    let im = import(ImportFormat::MovielensTsv, &dir.join("ml-100k/u.data")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("ml100k.parquet");
    im.interactions.write_parquet(&path).unwrap();
    let back = Interactions::read_parquet(&path).unwrap();
    assert_eq!(back, im.interactions);
    assert_eq!(back.content_hash(), im.interactions.content_hash());
    let (u, i) = im.write_vocab(&out.path().join("ml100k")).unwrap();
    assert_eq!(read_vocab(&u).unwrap(), im.user_vocab);
    assert_eq!(read_vocab(&i).unwrap(), im.item_vocab);
}

#[test]
fn real_movies_dat_genres() {
    let Some(dir) = data_dir() else { return };
    let g = movielens_genres(&dir.join("ml-1m/movies.dat")).unwrap();
    assert_eq!(g.len(), 3_883);
    assert_eq!(g["1"], vec!["Animation", "Children's", "Comedy"]);
    let g = movielens_genres(&dir.join("movietweetings-100k/movies.dat")).unwrap();
    assert_eq!(g.len(), 10_506);
    assert_eq!(g["0002844"], vec!["Crime", "Drama"]);
    assert_eq!(g.values().filter(|v| v.is_empty()).count(), 66);
    // Every rated MovieTweetings movie has a genre entry.
    let im = import(
        ImportFormat::Movietweetings,
        &dir.join("movietweetings-100k/ratings.dat"),
    )
    .unwrap();
    assert!(im.item_vocab[1..].iter().all(|m| g.contains_key(m)));
}

#[test]
fn real_ml_1m_item_genres() {
    use longtail_data::items::{movielens_item_features, ItemFeatures};
    let Some(dir) = data_dir() else { return };
    let im = import(
        ImportFormat::MovielensDat,
        &dir.join("ml-1m/ratings_users1-2999.dat.gz"),
    )
    .unwrap();
    let f = movielens_item_features(&dir.join("ml-1m/movies.dat"), &im.item_vocab).unwrap();
    f.validate().unwrap();
    assert_eq!(f.num_items, 3_616);
    let g = f.list("genres").unwrap();
    // Every ml-1m movie has at least one genre, so every rated item is covered.
    assert_eq!(g.covered(), 3_615);
    assert_eq!(g.vocab.len(), 18 + 1);
    let toy = im.item_vocab.iter().position(|m| m == "1").unwrap();
    assert_eq!(g.names_of(toy), vec!["Animation", "Children's", "Comedy"]);
    let out = tempfile::tempdir().unwrap();
    let p = out.path().join("ml1m.items.parquet");
    f.write_parquet(&p).unwrap();
    assert_eq!(ItemFeatures::read_parquet(&p).unwrap(), f);
}

#[test]
fn real_ml_100k_u_item_genres() {
    use longtail_data::items::movielens_100k_item_features;
    let Some(dir) = data_dir() else { return };
    let im = import(ImportFormat::MovielensTsv, &dir.join("ml-100k/u.data")).unwrap();
    let f = movielens_100k_item_features(&dir.join("ml-100k/u.item"), &im.item_vocab).unwrap();
    assert_eq!(f.num_items, 1_683);
    let g = f.list("genres").unwrap();
    assert_eq!(g.covered(), 1_682);
    assert_eq!(g.vocab.len(), 20);
    // u.item line 1: Toy Story is Animation|Children's|Comedy.
    let toy = im.item_vocab.iter().position(|m| m == "1").unwrap();
    assert_eq!(g.names_of(toy), vec!["Animation", "Children's", "Comedy"]);
    assert_eq!(g.values.len(), 2_893);
}

#[test]
fn real_movietweetings_item_genres() {
    use longtail_data::items::movielens_item_features;
    let Some(dir) = data_dir() else { return };
    let im = import(
        ImportFormat::Movietweetings,
        &dir.join("movietweetings-100k/ratings.dat"),
    )
    .unwrap();
    let f = movielens_item_features(&dir.join("movietweetings-100k/movies.dat"), &im.item_vocab)
        .unwrap();
    assert_eq!(f.num_items, 10_507);
    let g = f.list("genres").unwrap();
    // All 10,506 rated movies are in movies.dat; the 66 without genres stay empty.
    assert_eq!(g.covered(), 10_506 - 66);
    assert_eq!(g.vocab.len(), 25 + 1);
    let first = &im.item_vocab[1];
    let genres = movielens_genres(&dir.join("movietweetings-100k/movies.dat")).unwrap();
    assert_eq!(g.names_of(1), genres[first]);
}

#[test]
fn real_ml_100k_as_generic_csv() {
    use longtail_data::import::{import_with, ColumnMapping};
    let Some(dir) = data_dir() else { return };
    let m = ColumnMapping {
        rating: Some("3".into()),
        delimiter: '\t',
        header: false,
        ..ColumnMapping::new("1", "2", "4")
    };
    let path = dir.join("ml-100k/u.data");
    let im = import_with(ImportFormat::Csv, &path, Some(&m)).unwrap();
    check(&im, 100_000, 943, 1_682);
    assert_eq!(im, import(ImportFormat::MovielensTsv, &path).unwrap());
}
