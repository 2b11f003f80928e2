// Package bench holds the benchmarks `convene bench` runs: it starts a
// platform in this process (internal/stack) or loads one running
// elsewhere, drives it (a light load generator of its own, loadgen.go),
// breaks it where the benchmark says, measures, and prints the figures.
// The command line only turns flags into a benchmark's options.
//
// The benchmarks are a package of their own rather than bench*.go files in
// internal/drill: a drill judges a platform (pass or fail, from its
// verdict), a benchmark measures one; they share the load generator and the
// watchers (drill imports bench), and internal/drill keeps running the
// platform in other processes without importing a service.
package bench
