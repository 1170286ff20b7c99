//! The labelled subset, the batch sampler and the labelled/unlabelled batch schedule.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use ssinfogan_core::RngStreams;
use ssinfogan_datasets::{BatchKind, BatchSampler, BatchSchedule, LabelledSubset, RealBatches};

fn labels(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 10) as u8).collect()
}

#[test]
fn labelled_subset_has_exactly_n_and_partitions_the_split() {
    let labels = labels(1000);
    let mut rng = RngStreams::new(3).stream("labelled-subset");
    let subset = LabelledSubset::choose(&labels, 10, 132, false, &mut rng).unwrap();
    assert_eq!(subset.labelled.len(), 132);
    assert_eq!(subset.unlabelled.len(), 868);
    assert_eq!(subset.per_class.iter().sum::<usize>(), 132);
    let mut all: Vec<usize> = subset.labelled.iter().chain(&subset.unlabelled).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..1000).collect::<Vec<_>>());
    for (class, &count) in subset.per_class.iter().enumerate() {
        assert_eq!(count, subset.labelled.iter().filter(|&&i| usize::from(labels[i]) == class).count());
    }
}

#[test]
fn labelled_subset_is_a_function_of_the_seed() {
    let labels = labels(500);
    let choose = |seed| {
        LabelledSubset::choose(&labels, 10, 50, false, &mut RngStreams::new(seed).stream("labelled-subset")).unwrap()
    };
    assert_eq!(choose(1), choose(1));
    assert_ne!(choose(1).labelled, choose(2).labelled);
}

#[test]
fn balanced_subset_takes_the_same_count_from_every_class() {
    let labels = labels(1000);
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let subset = LabelledSubset::choose(&labels, 10, 132, true, &mut rng).unwrap();
    assert_eq!(subset.per_class, vec![14, 14, 13, 13, 13, 13, 13, 13, 13, 13]);
}

#[test]
fn zero_and_all_labels_are_allowed() {
    let labels = labels(40);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let none = LabelledSubset::choose(&labels, 10, 0, false, &mut rng).unwrap();
    assert!(none.labelled.is_empty());
    assert_eq!(none.unlabelled.len(), 40);
    let all = LabelledSubset::choose(&labels, 10, 40, false, &mut rng).unwrap();
    assert_eq!(all.labelled.len(), 40);
    assert!(all.unlabelled.is_empty());
}

#[test]
fn too_many_labels_is_an_error_naming_both_numbers() {
    let labels = labels(100);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let message = LabelledSubset::choose(&labels, 10, 101, false, &mut rng).unwrap_err().to_string();
    assert!(message.contains("n_labelled = 101 is larger than the train split (100 images)"), "{message}");
}

#[test]
fn an_impossible_balanced_subset_is_an_error() {
    let mut labels = vec![0u8; 50];
    labels.extend([1u8; 2]);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let message = LabelledSubset::choose(&labels, 2, 10, true, &mut rng).unwrap_err().to_string();
    assert!(message.contains("needs 5 images of class 1, the train split has 2"), "{message}");
}

#[test]
fn schedule_follows_the_official_growth() {
    let schedule = BatchSchedule::new(600, 60_000, Some(0.1)).unwrap();
    let p: Vec<f64> = (0..12).map(|e| schedule.unlabelled_probability(e)).collect();
    // 0.1 · epoch in f64, capped at the unlabelled fraction 1 − 600/60000 = 0.99.
    assert_eq!(
        p,
        vec![
            0.0,
            0.1,
            0.2,
            0.30000000000000004,
            0.4,
            0.5,
            0.6000000000000001,
            0.7000000000000001,
            0.8,
            0.9,
            0.99,
            0.99
        ]
    );
}

#[test]
fn schedule_edge_cases() {
    let infogan = BatchSchedule::new(0, 60_000, Some(0.1)).unwrap();
    assert_eq!(infogan.unlabelled_probability(0), 1.0);
    let no_growth = BatchSchedule::new(6_000, 60_000, None).unwrap();
    assert_eq!(no_growth.unlabelled_probability(0), 0.9);
    let all_labelled = BatchSchedule::new(100, 100, Some(0.1)).unwrap();
    assert_eq!(all_labelled.unlabelled_probability(30), 0.0);
    assert!(BatchSchedule::new(101, 100, Some(0.1)).is_err());
    assert!(BatchSchedule::new(10, 100, Some(0.0)).is_err());
}

#[test]
fn the_coin_respects_its_probability() {
    let mut rng = RngStreams::new(1).stream("batch-coin");
    let infogan = BatchSchedule::new(0, 100, Some(0.1)).unwrap();
    assert!((0..1000).all(|_| infogan.draw(0, &mut rng) == BatchKind::Unlabelled));
    let growing = BatchSchedule::new(50, 100, Some(0.1)).unwrap();
    assert!((0..1000).all(|_| growing.draw(0, &mut rng) == BatchKind::Labelled));
    let unlabelled = (0..10_000).filter(|_| growing.draw(3, &mut rng) == BatchKind::Unlabelled).count();
    // p = 0.3: the binomial standard deviation over 10,000 tosses is 46, so ±230 is five of them.
    assert!((2770..=3230).contains(&unlabelled), "{unlabelled} unlabelled batches of 10000 at p = 0.3");
}

#[test]
fn sampler_visits_every_index_once_per_pass_and_reshuffles() {
    let mut sampler =
        BatchSampler::new((100..110).collect(), 4, RngStreams::new(5).stream("labelled-batches")).unwrap();
    let drawn: Vec<usize> = (0..5).flat_map(|_| sampler.next_batch()).collect(); // 20 = two passes
    assert_eq!(sampler.passes(), 1);
    let (first, second) = drawn.split_at(10);
    for pass in [first, second] {
        let mut sorted = pass.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, (100..110).collect::<Vec<_>>());
    }
    assert_ne!(first, second, "each pass must be reshuffled");
}

#[test]
fn sampler_fills_a_batch_larger_than_its_set() {
    let mut sampler = BatchSampler::new(vec![7, 8, 9], 8, ChaCha8Rng::seed_from_u64(0)).unwrap();
    let batch = sampler.next_batch();
    assert_eq!(batch.len(), 8);
    for i in [7, 8, 9] {
        assert!(batch.iter().filter(|&&b| b == i).count() >= 2);
    }
}

#[test]
fn sampler_rejects_empty_sets_and_empty_batches() {
    assert!(BatchSampler::new(vec![], 4, ChaCha8Rng::seed_from_u64(0)).is_err());
    assert!(BatchSampler::new(vec![1], 0, ChaCha8Rng::seed_from_u64(0))
        .unwrap_err()
        .to_string()
        .contains("batch size 0"));
}

fn real_batches(n_labelled: usize, seed: u64) -> (LabelledSubset, RealBatches) {
    let labels = labels(200);
    let s = RngStreams::new(seed);
    let subset = LabelledSubset::choose(&labels, 10, n_labelled, false, &mut s.stream("labelled-subset")).unwrap();
    let batches =
        RealBatches::new(&subset, 16, Some(0.1), s.stream("labelled"), s.stream("unlabelled"), s.stream("coin"))
            .unwrap();
    (subset, batches)
}

#[test]
fn real_batches_draw_from_the_set_the_coin_picks() {
    let (subset, mut batches) = real_batches(20, 4);
    let mut kinds = Vec::new();
    for epoch in [0, 5, 30] {
        for _ in 0..50 {
            let (kind, indices) = batches.next(epoch);
            let set = if kind == BatchKind::Labelled { &subset.labelled } else { &subset.unlabelled };
            assert_eq!(indices.len(), 16);
            assert!(indices.iter().all(|i| set.contains(i)));
            kinds.push(kind);
        }
    }
    // p = 0 in epoch 0; p = 0.9 (the unlabelled fraction 180/200) by epoch 30.
    assert!(kinds[..50].iter().all(|&k| k == BatchKind::Labelled));
    let late = kinds[100..].iter().filter(|&&k| k == BatchKind::Unlabelled).count();
    assert!(late > 30, "{late} of 50 batches unlabelled at p = 0.9");
}

#[test]
fn real_batches_without_labels_or_without_unlabelled_images() {
    let (_, mut infogan) = real_batches(0, 1);
    assert!((0..20).all(|_| infogan.next(0).0 == BatchKind::Unlabelled));
    let (_, mut all) = real_batches(200, 1);
    assert!((0..20).all(|e| all.next(e).0 == BatchKind::Labelled));
}

#[test]
fn real_batches_repeat_exactly_for_the_same_seed() {
    let draw = |seed| {
        let (_, mut b) = real_batches(20, seed);
        (0..40).map(|i| b.next(i / 10)).collect::<Vec<_>>()
    };
    assert_eq!(draw(7), draw(7));
    assert_ne!(draw(7), draw(8));
}
