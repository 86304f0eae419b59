using System.Globalization;
using Vae.ML.Samples.Analysis;
using Vae.ML.Samples.Reporting;

namespace Vae.ML.Samples.Training;

/// <summary>Judges real test images, their reconstructions and generated samples with a pixel-space k-NN digit classifier.</summary>
internal static class ReadabilityStep
{
    /// <summary>Neighbours per vote.</summary>
    public const int NeighbourCount = 10;

    /// <summary>Share of neighbours that must agree for an image to count as unambiguous.</summary>
    public const double AgreementThreshold = 0.8;

    /// <summary>Measures readability on up to <paramref name="count"/> test images, their reconstructions and as many samples.</summary>
    public static ReadabilitySummary Measure(SampleRun run, VaeTransformer model, int count = 1000)
    {
        var test = run.TestImages;
        var train = run.TrainImages;
        int neighbours = Math.Min(NeighbourCount, train.Count);
        count = Math.Min(count, test.Count);
        var judge = new PixelNearestNeighbours(train, neighbours);

        float[] originals = test.CopyPixels(0, count);
        ReadOnlySpan<byte> labels = test.Labels.AsSpan(0, count);
        NeighbourVote[] real = judge.Classify(originals);
        NeighbourVote[] reconstructed = judge.Classify(model.Reconstruct(originals));
        // Its own seed stream (seed + 1) so that these samples are not the 64 of the figure over again.
        NeighbourVote[] generated = judge.Classify(model.Sample(count, run.Settings.Seed + 1));

        int[] generatedCounts = new int[10];
        foreach (NeighbourVote vote in generated)
        {
            if (vote.Label < generatedCounts.Length)
            {
                generatedCounts[vote.Label]++;
            }
        }

        var summary = new ReadabilitySummary
        {
            NeighbourCount = neighbours,
            AgreementThreshold = AgreementThreshold,
            ReferenceImages = train.Count,
            TestImages = count,
            TestAccuracy = Accuracy(real, labels),
            TestUnambiguous = Unambiguous(real),
            ReconstructionAccuracy = Accuracy(reconstructed, labels),
            ReconstructionUnambiguous = Unambiguous(reconstructed),
            ReconstructionConfusions = Confusions(reconstructed, labels, top: 3),
            GeneratedImages = count,
            GeneratedUnambiguous = Unambiguous(generated),
            GeneratedLabelCounts = generatedCounts,
        };
        return summary;
    }

    /// <summary>One-line summary for the console.</summary>
    public static string Describe(ReadabilitySummary r) => string.Create(CultureInfo.InvariantCulture,
        $"Readability ({r.NeighbourCount}-NN in pixel space over {r.ReferenceImages:N0} training images, unambiguous = {r.AgreementThreshold:0%} agree): " +
        $"test images {r.TestAccuracy:0.0%} right / {r.TestUnambiguous:0.0%} unambiguous, reconstructions {r.ReconstructionAccuracy:0.0%} right / {r.ReconstructionUnambiguous:0.0%} unambiguous, " +
        $"generated {r.GeneratedUnambiguous:0.0%} unambiguous ({r.GeneratedImages} each).");

    private static double Accuracy(NeighbourVote[] votes, ReadOnlySpan<byte> labels)
    {
        int right = 0;
        for (int i = 0; i < votes.Length; i++)
        {
            if (votes[i].Label == labels[i])
            {
                right++;
            }
        }

        return (double)right / votes.Length;
    }

    private static Confusion[] Confusions(NeighbourVote[] votes, ReadOnlySpan<byte> labels, int top)
    {
        var counts = new Dictionary<(int Digit, int ReadAs), int>();
        for (int i = 0; i < votes.Length; i++)
        {
            if (votes[i].Label != labels[i])
            {
                var key = ((int)labels[i], (int)votes[i].Label);
                counts[key] = counts.GetValueOrDefault(key) + 1;
            }
        }

        return counts.OrderByDescending(pair => pair.Value).ThenBy(pair => pair.Key.Digit).ThenBy(pair => pair.Key.ReadAs)
            .Take(top).Select(pair => new Confusion(pair.Key.Digit, pair.Key.ReadAs, pair.Value)).ToArray();
    }

    private static double Unambiguous(NeighbourVote[] votes) => votes.Count(v => v.Agreement >= AgreementThreshold - 1e-9) / (double)votes.Length;
}
