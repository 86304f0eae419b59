// libtorch's CPU kernels split work by the threads free at the moment; two trainings at once would each see fewer
// threads and sum in a different order, so bit-for-bit determinism checks need tests to run one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
