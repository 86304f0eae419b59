using System.Globalization;
using Vae.ML.Samples.Analysis;
using Vae.ML.Samples.Figures;
using Vae.ML.Samples.Reporting;

namespace Vae.ML.Samples.Training;

/// <summary>Outcome of one figure step: the figure written (null when skipped) and a note for the report.</summary>
internal sealed record FigureResult(FigureEntry? Figure, string? Note);

/// <summary>
/// Computes what each figure needs from a model and writes it into the output folder. Shared by the single
/// commands (reconstruct, latent, ...) and the full report.
/// </summary>
internal static class FigureSteps
{
    public const string TrainingLossFile = "training_loss.png";
    public const string ReconstructionsFile = "reconstructions.png";
    public const string LatentSpaceFile = "latent_space.png";
    public const string GeneratedSamplesFile = "generated_samples.png";
    public const string ManifoldFile = "latent_manifold.png";
    public const string InterpolationFile = "interpolation.png";

    /// <summary>training_loss.png from a training history.</summary>
    public static FigureResult TrainingLoss(SampleRun run, IReadOnlyList<EpochRecord> epochs)
    {
        // The reference's markers belong on the report configuration's curve only (MNIST, MLP 784-400-2, β 1, ...),
        // not on Fashion-MNIST's or a β-VAE's, whose losses they would seem to judge.
        var s = run.Settings;
        bool reportConfiguration = s.Dataset == "mnist" && s.Architecture == VaeArchitecture.Mlp && s.LatentDimension == 2
            && s.Epochs == PyTorchReference.Epochs && s.BatchSize == 128 && s.LearningRate == 1e-3 && s.Beta == 1.0 && s.TrainLimit is null;
        IReadOnlyList<ReferencePoint>? reference = reportConfiguration
            ? [new ReferencePoint("PyTorch reference, train", PyTorchReference.Epochs, PyTorchReference.TrainLossEpoch20),
               new ReferencePoint("PyTorch reference, test", PyTorchReference.Epochs, PyTorchReference.TestLossEpoch20)]
            : null;
        ReportFigures.SaveTrainingLoss(run.OutputPath(TrainingLossFile), epochs, reference);
        EpochRecord first = epochs[0], last = epochs[^1];
        string caption = string.Create(CultureInfo.InvariantCulture,
            $"Left: loss per image after each epoch; train loss {first.TrainLoss:F1} after epoch 1 and {last.TrainLoss:F1} after epoch {last.Epoch}") +
            (last.TestLoss is double test ? string.Create(CultureInfo.InvariantCulture, $", test loss {test:F1}") : "") +
            (reference is null ? "." : "; open markers: the PyTorch reference at epoch 20.") +
            string.Create(CultureInfo.InvariantCulture,
                $" Right: the train loss split into reconstruction (BCE, {first.TrainReconstructionLoss:F1} to {last.TrainReconstructionLoss:F1}) and KL divergence ({first.TrainKlDivergence:F2} to {last.TrainKlDivergence:F2}).") +
            (epochs.Count > 2 && last.TrainKlDivergence > epochs.Min(e => e.TrainKlDivergence)
                ? " The KL term rises again after its minimum while BCE keeps falling: the encoder spends more information in the latent code to reconstruct better."
                : "");
        return new FigureResult(new FigureEntry(TrainingLossFile, "Training loss", caption), null);
    }

    /// <summary>reconstructions.png: the first <paramref name="count"/> test images over their reconstructions.</summary>
    public static FigureResult Reconstructions(SampleRun run, VaeTransformer model, int count)
    {
        count = Math.Min(count, run.TestImages.Labels.Length);
        float[] originals = run.TestImages.CopyPixels(0, count);
        float[] reconstructions = model.Reconstruct(originals);
        byte[] labels = run.TestImages.Labels.AsSpan(0, count).ToArray();
        ReportFigures.SaveReconstructions(run.OutputPath(ReconstructionsFile), originals, reconstructions, labels, run.ClassNames);
        float[] scores = model.Score(originals);
        string caption = string.Create(CultureInfo.InvariantCulture,
            $"Top: the first {count} test images; bottom: their reconstructions Decode(\u03bc(x)). Mean loss of these {count} images at z = \u03bc: {scores.Average():F1} per image.");
        return new FigureResult(new FigureEntry(ReconstructionsFile, "Reconstructions", caption), null);
    }

    /// <summary>latent_space.png plus the class-separation numbers; skipped (with a note) for a 1-D latent space.</summary>
    public static (FigureResult Result, LatentSeparationSummary Separation) LatentSpace(SampleRun run, VaeTransformer model)
    {
        float[] latents = run.EncodeTest(model);
        byte[] labels = run.TestImages.Labels;
        LatentSeparationSummary separation = LatentSeparation.Measure(latents, model.LatentDimension, labels);
        string numbers = string.Create(CultureInfo.InvariantCulture,
            $"{separation.NeighbourCount}-nearest-neighbour accuracy of the digit from its latent mean {separation.NearestNeighbourAccuracy:0.0%}, silhouette {separation.Silhouette:F3}");
        if (model.LatentDimension < 2)
        {
            return (new FigureResult(null, $"latent_space.png skipped: the latent space has 1 dimension, a 2-D scatter needs 2 ({numbers})."), separation);
        }

        ReportFigures.SaveLatentSpace(run.OutputPath(LatentSpaceFile), latents, model.LatentDimension, labels, run.ClassNames);
        string which = model.LatentDimension == 2 ? "" : $" (dimensions 1 and 2 of {model.LatentDimension}; the numbers use all)";
        string caption = string.Create(CultureInfo.InvariantCulture,
            $"Each of the {labels.Length:N0} test images at its latent mean \u03bc(x){which}, coloured by its digit. {char.ToUpperInvariant(numbers[0])}{numbers[1..]} (1 = perfectly separated clusters, 0 = overlapping).");
        return (new FigureResult(new FigureEntry(LatentSpaceFile, "Latent space", caption), null), separation);
    }

    /// <summary>generated_samples.png: <paramref name="side"/>^2 decodings of z ~ N(0, I).</summary>
    public static FigureResult GeneratedSamples(SampleRun run, VaeTransformer model, int side)
    {
        float[] samples = model.Sample(side * side, run.Settings.Seed);
        ReportFigures.SaveGeneratedSamples(run.OutputPath(GeneratedSamplesFile), samples, side);
        string caption = string.Create(CultureInfo.InvariantCulture,
            $"{side * side} images decoded from latent points drawn from the prior N(0, I) (seed {run.Settings.Seed}); none of them is a training image.");
        return new FigureResult(new FigureEntry(GeneratedSamplesFile, "Generated samples", caption), null);
    }

    /// <summary>latent_manifold.png: decodings on a <paramref name="side"/> x <paramref name="side"/> grid of N(0,1) quantiles 0.05..0.95.</summary>
    public static FigureResult Manifold(SampleRun run, VaeTransformer model, int side)
    {
        if (model.LatentDimension < 2)
        {
            return new FigureResult(null, "latent_manifold.png skipped: the latent space has 1 dimension, the manifold grid needs 2.");
        }

        double[] grid = GaussianQuantile.Grid(side);
        float[] latents = ReportFigures.ManifoldLatents(grid, grid, model.LatentDimension);
        float[] decodings = model.Decode(latents);
        ReportFigures.SaveManifold(run.OutputPath(ManifoldFile), decodings, grid, grid, model.LatentDimension);
        string which = model.LatentDimension == 2 ? "the latent plane" : $"latent dimensions 1 and 2 (the other {model.LatentDimension - 2} held at 0)";
        string caption = string.Create(CultureInfo.InvariantCulture,
            $"Decodings of a {side}x{side} grid over {which}, at the N(0, 1) quantiles of probabilities 0.05 to 0.95 (z from {grid[0]:F2} to {grid[^1]:F2}), as in the Keras VAE example; compare with the latent-space scatter (same z\u2081, z\u2082 axes; the grid covers its central part).");
        return new FigureResult(new FigureEntry(ManifoldFile, "Latent manifold", caption), null);
    }

    /// <summary>interpolation.png: decodings along the straight line between two test images' latent means.</summary>
    public static FigureResult Interpolation(SampleRun run, VaeTransformer model, int fromIndex, int toIndex, int steps)
    {
        int count = run.TestImages.Labels.Length;
        foreach ((int index, string option) in new[] { (fromIndex, "--from"), (toIndex, "--to") })
        {
            if (index < 0 || index >= count)
            {
                throw new ArgumentOutOfRangeException(option, index, $"{option} must be a test image index in 0..{count - 1}.");
            }
        }

        float[] a = run.TestImages.CopyPixels(fromIndex, 1);
        float[] b = run.TestImages.CopyPixels(toIndex, 1);
        float[] za = model.Encode(a);
        float[] zb = model.Encode(b);
        float[] path = ReportFigures.LinearPath(za, zb, steps);
        float[] decodings = model.Decode(path);
        byte labelA = run.TestImages.Labels[fromIndex], labelB = run.TestImages.Labels[toIndex];
        string description = $"Test image #{fromIndex} (digit {labelA}) to test image #{toIndex} (digit {labelB})";
        ReportFigures.SaveInterpolation(run.OutputPath(InterpolationFile), a, b, decodings, steps, description);
        string caption = string.Create(CultureInfo.InvariantCulture,
            $"Outer columns: test images #{fromIndex} (digit {labelA}) and #{toIndex} (digit {labelB}). Between them: decodings of {steps} evenly spaced points on the straight line from \u03bc(A) = ({Format(za)}) to \u03bc(B) = ({Format(zb)}).");
        return new FigureResult(new FigureEntry(InterpolationFile, "Interpolation", caption), null);
    }

    private static string Format(float[] z) => string.Join(", ", z.Select(v => v.ToString("F2", CultureInfo.InvariantCulture)));
}
