using System.Diagnostics;
using TorchSharp;
using Vae.ML.Data;
using static TorchSharp.torch;

namespace Vae.ML.Torch;

/// <summary>Settings of one training run, resolved from <see cref="VaeOptions"/>.</summary>
internal sealed record VaeTrainingSettings(int Epochs, int BatchSize, double LearningRate, double Beta, long Seed);

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
        Action throwIfCancelled)
    {
        var history = new List<VaeEpochMetrics>();
        var network = model.Network;
        using var optimizer = torch.optim.Adam(network.parameters(), settings.LearningRate);
        using var shuffleGenerator = model.CreateGeneratorAfterInit(settings.Seed);

        // On CUDA the noise comes from the device's own generator, seeded as torch.manual_seed seeds it.
        using var deviceGenerator = model.Device.type == DeviceType.CPU ? null : new Generator((ulong)settings.Seed, model.Device);
        var noiseGenerator = deviceGenerator ?? shuffleGenerator;

        // Data that fits is uploaded once; each batch is then an index_select of a fresh permutation.
        using var resident = train is FeatureMatrix matrix ? model.ToDevice(matrix.Values, matrix.Rows, matrix.Width) : null;

        for (var epoch = 1; epoch <= settings.Epochs; epoch++)
        {
            var clock = Stopwatch.StartNew();
            network.train();
            double total = 0, reconstruction = 0, kl = 0;
            long seen = 0;
            using var batches = (resident is not null
                ? ResidentBatches(resident, settings.BatchSize, shuffleGenerator, model.Device)
                : StreamedBatches(train, settings.BatchSize, shuffleGenerator, model)).GetEnumerator();
            while (true)
            {
                throwIfCancelled();

                // The batch is created inside the scope (by MoveNext), so it is freed with the batch's graph.
                using var scope = torch.NewDisposeScope();
                if (!batches.MoveNext())
                {
                    break;
                }

                var x = batches.Current;
                optimizer.zero_grad();
                var (logits, mu, logVar) = network.forward(x, noiseGenerator);
                var (loss, bce, kld) = VaeLoss.Batch(logits, x, mu, logVar, settings.Beta);
                loss.backward();
                optimizer.step();
                total += loss.item<float>();
                reconstruction += bce.item<float>();
                kl += kld.item<float>();
                seen += x.shape[0];
            }

            clock.Stop();
            var metrics = new VaeEpochMetrics
            {
                Epoch = epoch,
                TotalEpochs = settings.Epochs,
                TrainLoss = total / seen,
                TrainReconstructionLoss = reconstruction / seen,
                TrainKlDivergence = kl / seen,
                Seconds = clock.Elapsed.TotalSeconds,
            };

            if (validation is not null)
            {
                var (sampled, atMean) = Evaluate(model, validation, settings.Beta, settings.BatchSize, noiseGenerator);
                metrics = metrics with { ValidationLoss = sampled, ValidationLossAtMean = atMean };
            }

            history.Add(metrics);
            onEpoch(metrics);
        }

        network.eval();
        return history;
    }

    internal static IEnumerable<Tensor> ResidentBatches(Tensor data, int batchSize, Generator generator, Device device)
    {
        long[] order;
        using (var permutation = torch.randperm(data.shape[0], generator: generator))
        {
            order = permutation.data<long>().ToArray();
        }

        for (var start = 0; start < order.Length; start += batchSize)
        {
            var count = Math.Min(batchSize, order.Length - start);
            var index = torch.tensor(order.AsSpan(start, count).ToArray(), device: device);
            yield return data.index_select(0, index);
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
        for (var start = 0; start < data.Rows; start += batchSize)
        {
            var rows = Math.Min(batchSize, data.Rows - start);
            using var scope = torch.NewDisposeScope();
            var x = model.ToDevice(data.RowSpan(start, rows), rows, data.Width);
            var (logits, mu, logVar) = network.forward(x, generator);
            sampled += VaeLoss.Batch(logits, x, mu, logVar, beta).Total.item<float>();
            var meanLogits = network.DecodeLogits(mu);
            atMean += VaeLoss.Batch(meanLogits, x, mu, logVar, beta).Total.item<float>();
        }

        return (sampled / data.Rows, atMean / data.Rows);
    }
}
