fn main() {
    let t = std::time::Instant::now();
    let v = gort::run(|| {
        let hs: Vec<_> = (0..10000u64).map(|i| gort::go(move || { gort::gosched(); i })).collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
    });
    println!("sum={v} in {:?} stats={:?}", t.elapsed(), gort::stats());
}
