using System.Diagnostics;
using TorchSharp;
using TorchSharp.Modules;
using Vae.ML.Data;
using static TorchSharp.torch;

namespace Vae.ML.Torch;

/// <summary>Settings of one training run, resolved from <see cref="VaeOptions"/>; the controls default to off.</summary>
internal sealed record VaeTrainingSettings(
    int Epochs,
    int BatchSize,
    double LearningRate,
    double Beta,
    long Seed,
    int KlWarmupEpochs = 0,
    int? EarlyStoppingPatience = null,
    TimeSpan BatchProgressInterval = default);

/// <summary>Adam's state for one parameter: its step count and both moment estimates, row-major.</summary>
internal sealed record AdamParameterState(string Name, long Step, float[] ExpAvg, float[] ExpAvgSq);

/// <summary>
/// Everything a training run needs to continue after <see cref="Epoch"/> exactly as if it had never stopped, as plain
/// arrays: the weights, Adam's state, the random generators' state, the history so far and, with early stopping, the
/// best epoch's weights (its loss and the epochs since follow from the history).
/// </summary>
internal sealed record VaeTrainingState(
    int Epoch,
    IReadOnlyList<VaeEpochMetrics> History,
    IReadOnlyList<(string Name, long[] Shape, float[] Values)> Parameters,
    IReadOnlyList<AdamParameterState> Optimizer,
    byte[] CpuGeneratorState,
    byte[]? DeviceGeneratorState,
    IReadOnlyList<(string Name, long[] Shape, float[] Values)>? BestParameters = null);

/// <summary>When to hand the training state to <see cref="Save"/>: every <see cref="EveryEpochs"/> epochs and after the last.</summary>
internal sealed record VaeCheckpointing(int EveryEpochs, Action<VaeTrainingState> Save);

/// <summary>
/// The report's training loop: Adam, reshuffled every epoch, per-batch loss summed over the batch's images,
/// epoch loss reported per image. Random numbers are drawn in the PyTorch script's order (initialisation, then per
/// epoch one randperm and one randn per batch, then one randn per validation batch) from a generator that continues
/// the seeded initialisation's stream, so a seed reproduces the script's numbers on CPU; the generator is private to the
/// run, so concurrent trainings in one process do not disturb each other.
/// </summary>
internal static class VaeTrainingLoop
{
    public static List<VaeEpochMetrics> Run(
        VaeModel model,
        ITrainingFeatures train,
        FeatureMatrix? validation,
        VaeTrainingSettings settings,
        Action<VaeEpochMetrics> onEpoch,
        Action throwIfCancelled,
        VaeTrainingState? resumeFrom = null,
        VaeCheckpointing? checkpointing = null,
        Action<VaeBatchProgress>? onBatch = null)
    {
        var history = new List<VaeEpochMetrics>();
        var network = model.Network;
        // The managed passes of the CPU step and of Adam use the cores that libtorch's GEMMs use, in fixed ranges: the
        // same bits as on one thread.
        var partition = model.Device.type == DeviceType.CPU ? StepPartition.ForTorchThreads() : StepPartition.Serial;
        using var optimizer = new FlatAdam(network.named_parameters(), settings.LearningRate, partition);

        // The MLP on the CPU trains without autograd (hand-derived gradients into the optimizer's flat buffer).
        using var cpuStep = CpuMlpStep.TryCreate(model, partition);
        using var shuffleGenerator = model.CreateGeneratorAfterInit(settings.Seed);

        // On CUDA the noise comes from the device's own generator, seeded as torch.manual_seed seeds it.
        using var deviceGenerator = model.Device.type == DeviceType.CPU ? null : new Generator((ulong)settings.Seed, model.Device);
        var noiseGenerator = deviceGenerator ?? shuffleGenerator;

        var firstEpoch = 1;
        // The trainer refuses a patience without validation data, so a patience here always has a loss to watch.
        var earlyStopping = new EarlyStopping(settings.EarlyStoppingPatience);
        if (resumeFrom is not null)
        {
            Restore(resumeFrom, model, optimizer, shuffleGenerator, deviceGenerator);

            // Why the checkpointed run stopped belonged to that run; this one says why it stops (below, after the loop,
            // when it trains no further epoch).
            history.AddRange(resumeFrom.History.Select(m => m with { TotalEpochs = settings.Epochs, StopReason = null }));
            earlyStopping.Resume(history, resumeFrom.BestParameters);
            firstEpoch = resumeFrom.Epoch + 1;
        }

        var totalBatches = (int)((train.Rows + settings.BatchSize - 1) / settings.BatchSize);

        // Data that fits is resident; each batch is then an index_select of a fresh permutation. On the CPU without
        // standardization the network takes the rows as read (no second copy); otherwise they are uploaded once.
        var matrix = train as FeatureMatrix;
        using var uploaded = matrix is not null && (model.Device.type != DeviceType.CPU || model.Standardization is not null)
            ? model.ToDevice(matrix.AllValues, matrix.Rows, matrix.Width)
            : null;
        var resident = uploaded ?? matrix?.Values;

        for (var epoch = firstEpoch; epoch <= settings.Epochs && !earlyStopping.ShouldStop; epoch++)
        {
            var klWeight = KlWeight(settings.Beta, settings.KlWarmupEpochs, epoch);
            var clock = Stopwatch.StartNew();
            var lastReport = TimeSpan.Zero;
            network.train();
            using var tally = new EpochTally(epoch, settings.LearningRate);
            var batch = 0;
            using var batches = (resident is not null
                ? ResidentBatches(resident, settings.BatchSize, shuffleGenerator, model.Device)
                : StreamedBatches(train, settings.BatchSize, shuffleGenerator, model)).GetEnumerator();
            while (true)
            {
                throwIfCancelled();

                // The batch is created inside the scope (by MoveNext), so it is freed with the batch's graph.
                using (var scope = torch.NewDisposeScope())
                {
                    if (!batches.MoveNext())
                    {
                        break;
                    }

                    batch++;
                    var x = batches.Current;
                    if (cpuStep is not null)
                    {
                        var (loss, bce, kld) = cpuStep.Run(x, noiseGenerator, klWeight);
                        optimizer.Step();
                        tally.Record(loss, bce, kld, optimizer.LastLargestGradient, x.shape[0]);
                    }
                    else
                    {
                        optimizer.ZeroGrad();
                        var (logits, mu, logVar) = network.forward(x, noiseGenerator);
                        var (loss, bce, kld) = VaeLoss.Batch(logits, x, mu, logVar, klWeight, model.Gaussian);
                        loss.backward();
                        tally.Record(loss, bce, kld, optimizer.LargestGradientMagnitude(), x.shape[0]);
                        optimizer.Step();
                    }
                }

                // The divergence guard reads the recorded losses and gradient magnitudes every few batches (and before
                // anything leaves the loop), not every step: a host sync and a dozen native calls per step were a
                // fifth of the step. An update from a bad batch may reach the weights in between, but it never
                // leaves the loop: the check throws first, and a failed Fit disposes the network.
                if (tally.Pending >= EpochTally.CheckEvery)
                {
                    tally.Check();
                }

                // Throttled by the clock; reporting draws no random numbers, so it never changes the run.
                if (onBatch is not null && (batch == totalBatches || clock.Elapsed - lastReport >= settings.BatchProgressInterval))
                {
                    tally.Check();
                    lastReport = clock.Elapsed;
                    onBatch(new VaeBatchProgress
                    {
                        Epoch = epoch,
                        TotalEpochs = settings.Epochs,
                        Batch = batch,
                        TotalBatches = totalBatches,
                        Rows = tally.Rows,
                        TotalRows = train.Rows,
                        TrainLoss = tally.Total / tally.Rows,
                    });
                }
            }

            tally.Check();
            double total = tally.Total, reconstruction = tally.Reconstruction, kl = tally.Kl;
            long seen = tally.Rows;
            clock.Stop();
            var metrics = new VaeEpochMetrics
            {
                Epoch = epoch,
                TotalEpochs = settings.Epochs,
                TrainLoss = total / seen,
                TrainReconstructionLoss = reconstruction / seen,
                TrainKlDivergence = kl / seen,
                Seconds = clock.Elapsed.TotalSeconds,
                KlWeight = klWeight,
            };

            if (validation is not null)
            {
                // At the final β, so that the losses of warm-up epochs compare with later ones and with the Score.
                var (sampled, atMean) = Evaluate(model, validation, settings.Beta, settings.BatchSize, noiseGenerator);
                metrics = metrics with { ValidationLoss = sampled, ValidationLossAtMean = atMean };
                metrics = earlyStopping.Observe(metrics, model);
            }

            if (earlyStopping.ShouldStop)
            {
                metrics = metrics with { StopReason = VaeStopReason.EarlyStopping };
            }
            else if (epoch == settings.Epochs)
            {
                metrics = metrics with { StopReason = VaeStopReason.Completed };
            }

            history.Add(metrics);

            // Saved before the progress report, so an application that stops in its progress handler keeps this epoch.
            if (checkpointing is not null && (epoch % checkpointing.EveryEpochs == 0 || metrics.StopReason is not null))
            {
                checkpointing.Save(Capture(epoch, history, model, optimizer, shuffleGenerator, deviceGenerator, earlyStopping.BestParameters));
            }

            // Blocks freed during the epoch stay resident in glibc's heap (its arenas keep them): the 20-epoch report's RSS
            // grew by ≈ 14 MB per epoch, 36 MB of which a malloc_trim gave back after epoch 4. About 1 ms per epoch.
            Runtime.NativeHeap.ReleaseFreePages();
            onEpoch(metrics);
        }

        // A run resumed from the checkpoint of its last epoch (or of an early stop) trains nothing more; its history
        // still says why it ended.
        if (history[^1].StopReason is null)
        {
            history[^1] = history[^1] with { StopReason = earlyStopping.ShouldStop ? VaeStopReason.EarlyStopping : VaeStopReason.Completed };
        }

        earlyStopping.RestoreBest(model, history);
        network.eval();
        return history;
    }

    /// <summary>
    /// The KL weight of <paramref name="epoch"/> (1-based) under a linear warm-up over <paramref name="warmupEpochs"/>
    /// epochs: β · min(1, (epoch − 1) / warmupEpochs), exactly β without warm-up (epochs count from 1, so every epoch
    /// is past a warm-up of 0 epochs).
    /// </summary>
    internal static double KlWeight(double beta, int warmupEpochs, int epoch)
        => epoch > warmupEpochs ? beta : beta * ((epoch - 1) / (double)warmupEpochs);

    /// <summary>
    /// Early stopping's state: the lowest validation loss at μ, the weights that gave it and the epochs since. Inert
    /// (every member a no-op) without a patience.
    /// </summary>
    private sealed class EarlyStopping(int? patience)
    {
        private double _bestLoss = double.PositiveInfinity;
        private int _sinceBest;

        public IReadOnlyList<(string Name, long[] Shape, float[] Values)>? BestParameters { get; private set; }

        public bool ShouldStop => patience is int p && _sinceBest >= p;

        /// <summary>Records the epoch's validation loss; keeps a copy of the weights when it is a new low.</summary>
        public VaeEpochMetrics Observe(VaeEpochMetrics metrics, VaeModel model)
        {
            if (patience is null)
            {
                return metrics;
            }

            // A NaN loss is never an improvement.
            if (metrics.ValidationLossAtMean < _bestLoss)
            {
                _bestLoss = metrics.ValidationLossAtMean.Value;
                _sinceBest = 0;
                BestParameters = model.GetParameters();
            }
            else
            {
                _sinceBest++;
            }

            return metrics with { EpochsWithoutImprovement = _sinceBest };
        }

        /// <summary>Takes the state back from a checkpoint: the counter and best loss from the history, the weights as saved.</summary>
        public void Resume(IReadOnlyList<VaeEpochMetrics> history, IReadOnlyList<(string Name, long[] Shape, float[] Values)>? best)
        {
            if (patience is null)
            {
                return;
            }

            _sinceBest = history[^1].EpochsWithoutImprovement
                ?? throw new InvalidDataException("the checkpoint was written without early stopping (its history has no EpochsWithoutImprovement)");
            var bestEpoch = history.Count - 1 - _sinceBest;
            if (bestEpoch >= 0)
            {
                _bestLoss = history[bestEpoch].ValidationLossAtMean ?? double.PositiveInfinity;
                BestParameters = best ?? throw new InvalidDataException("the checkpoint lacks the best epoch's weights (best.* tensors)");
            }
        }

        /// <summary>Puts the best epoch's weights back into the model and marks that epoch in the history.</summary>
        public void RestoreBest(VaeModel model, List<VaeEpochMetrics> history)
        {
            if (patience is null || BestParameters is null)
            {
                return;
            }

            var bestEpoch = history.Count - 1 - _sinceBest;
            history[bestEpoch] = history[bestEpoch] with { IsBestEpoch = true };
            model.SetParameters(BestParameters.ToDictionary(p => p.Name, p => (p.Shape, p.Values)));
        }
    }

    private static VaeTrainingState Capture(int epoch, List<VaeEpochMetrics> history, VaeModel model, FlatAdam optimizer, Generator cpu, Generator? device,
        IReadOnlyList<(string Name, long[] Shape, float[] Values)>? best)
        => new(epoch, history.ToArray(), model.GetParameters(), optimizer.GetState(), GeneratorState(cpu), device is null ? null : GeneratorState(device), best);

    private static void Restore(VaeTrainingState state, VaeModel model, FlatAdam optimizer, Generator cpu, Generator? device)
    {
        model.SetParameters(state.Parameters.ToDictionary(p => p.Name, p => (p.Shape, p.Values)));
        optimizer.SetState(state.Optimizer);
        SetGeneratorState(cpu, state.CpuGeneratorState);
        if (device is not null)
        {
            SetGeneratorState(device, state.DeviceGeneratorState
                ?? throw new InvalidDataException($"The checkpoint holds no state for the {device.device} generator; it was written by a CPU run."));
        }
    }

    private static byte[] GeneratorState(Generator generator)
    {
        using var state = generator.get_state();
        return state.data<byte>().ToArray();
    }

    private static void SetGeneratorState(Generator generator, byte[] bytes)
    {
        using var state = torch.tensor(bytes);
        generator.set_state(state);
    }

    internal static IEnumerable<Tensor> ResidentBatches(Tensor data, int batchSize, Generator generator, Device device)
    {
        // Drawn on the CPU generator (the PyTorch script's stream), moved to the data's device once per epoch; each
        // batch's index is then a slice of it, with no managed index array and no host-to-device copy per batch.
        var rows = data.shape[0];
        // Both outlive the first batch's dispose scope (they are created inside it), so they leave it.
        using var drawn = torch.randperm(rows, generator: generator).DetachFromDisposeScope();
        if (device.type == DeviceType.CPU)
        {
            foreach (var batch in HostBatches(data, batchSize, drawn))
            {
                yield return batch;
            }

            yield break;
        }

        using var permutation = drawn.to(device).DetachFromDisposeScope();
        for (long start = 0; start < rows; start += batchSize)
        {
            using var index = permutation.narrow(0, start, Math.Min(batchSize, rows - start));
            yield return data.index_select(0, index);
        }
    }

    /// <summary>
    /// The CPU's batches: the permutation's rows copied into one reused buffer (a plain row copy per image instead of
    /// libtorch's <c>index_select</c>, a parallel region per step); each batch is a view of it, valid until the next.
    /// </summary>
    private static IEnumerable<Tensor> HostBatches(Tensor data, int batchSize, Tensor permutation)
    {
        var rows = data.shape[0];
        var order = permutation.data<long>().ToArray();
        using var buffer = torch.empty(new long[] { Math.Min(batchSize, rows), data.shape[1] }, data.dtype).DetachFromDisposeScope();
        for (long start = 0; start < rows; start += batchSize)
        {
            var count = (int)Math.Min(batchSize, rows - start);
            CopyRows(data, order.AsSpan((int)start, count), buffer);
            yield return buffer.narrow(0, 0, count);
        }
    }

    /// <summary>Rows <paramref name="order"/> of <paramref name="data"/> into the first rows of <paramref name="target"/>.</summary>
    private static unsafe void CopyRows(Tensor data, ReadOnlySpan<long> order, Tensor target)
    {
        var width = (int)data.shape[1];
        float* source = StepMemory.Pointer(data), destination = StepMemory.Pointer(target);
        for (var i = 0; i < order.Length; i++)
        {
            new ReadOnlySpan<float>(source + (order[i] * width), width).CopyTo(new Span<float>(destination + ((long)i * width), width));
        }
    }

    internal static IEnumerable<Tensor> StreamedBatches(ITrainingFeatures train, int batchSize, Generator generator, VaeModel model)
    {
        // A seed for the streaming shuffle, drawn from the loop's generator so it differs per epoch yet is reproducible.
        int seed;
        using (var draw = torch.randint(int.MaxValue, new long[] { 1 }, generator: generator))
        {
            seed = (int)draw.item<long>();
        }

        foreach (var batch in train.ReadShuffled(batchSize, seed))
        {
            yield return model.ToDevice(batch.Values.AsSpan(0, batch.Rows * train.Width), batch.Rows, train.Width);
        }
    }

    /// <summary>Rows an evaluation pass reads between two trims of glibc's heap (see <see cref="Evaluate"/>).</summary>
    private const int RowsBetweenEvaluationTrims = 2_048;

    /// <summary>
    /// Per-image loss on <paramref name="data"/>: with z sampled (the reference's test loss, in batches of the training
    /// batch size so the same random numbers are drawn) and at z = μ (the Score column's definition).
    /// </summary>
    public static (double Sampled, double AtMean) Evaluate(VaeModel model, FeatureMatrix data, double beta, int batchSize, Generator generator)
    {
        var network = model.Network;
        network.eval();
        using var noGrad = torch.no_grad();
        double sampled = 0, atMean = 0;
        var rowsSinceTrim = 0;
        for (var start = 0; start < data.Rows; start += batchSize)
        {
            var rows = Math.Min(batchSize, data.Rows - start);
            // The pass's freed blocks stay resident in glibc's heap until trimmed: on MNIST's 10,000 test rows RSS rose by
            // 100 MB within it, which was the report's peak (docs/performance.md, "Extraction fixed cost and report memory").
            if ((rowsSinceTrim += rows) >= RowsBetweenEvaluationTrims)
            {
                rowsSinceTrim = 0;
                Runtime.NativeHeap.ReleaseFreePages();
            }

            using var scope = torch.NewDisposeScope();
            var x = model.ToDevice(data.RowSpan(start, rows), rows, data.Width);
            var (logits, mu, logVar) = network.forward(x, generator);
            sampled += VaeLoss.Batch(logits, x, mu, logVar, beta, model.Gaussian).Total.item<float>();
            var meanLogits = network.DecodeLogits(mu);
            atMean += VaeLoss.Batch(meanLogits, x, mu, logVar, beta, model.Gaussian).Total.item<float>();
        }

        return (sampled / data.Rows, atMean / data.Rows);
    }
}
