using System.Numerics.Tensors;
using Vae.ML.Datasets;

namespace Vae.ML.Samples.Analysis;

/// <summary>One image's vote among its nearest training images.</summary>
/// <param name="Label">The majority label of the neighbours (ties: the label of the nearest tied neighbour).</param>
/// <param name="Agreement">Fraction of the neighbours that carry <paramref name="Label"/> (1 = unanimous).</param>
internal readonly record struct NeighbourVote(byte Label, double Agreement);

/// <summary>
/// A k-nearest-neighbour digit classifier in pixel space (squared Euclidean distance to labelled reference
/// images, e.g. the MNIST training set). No training, nothing learned from the VAE: an independent judge of whether
/// a decoded image looks like one particular digit. Its accuracy on real test images is measured next to every use
/// (<see cref="Reporting.ReadabilitySummary.TestAccuracy"/>), so its own error rate is on record.
/// </summary>
internal sealed class PixelNearestNeighbours
{
    /// <summary>Reference images scaled to floats at a time: 2,048 × 784 floats (6.4 MB) stay in the cache while every query visits them.</summary>
    private const int ReferenceBlock = 2048;

    private readonly MnistImages references;
    private readonly float[] referenceSquaredNorms;
    private readonly int pixelsPerImage;
    private readonly int labelCount;

    public PixelNearestNeighbours(float[] referencePixels, byte[] referenceLabels, int pixelsPerImage, int neighbourCount = 10)
        : this(Check(referencePixels, referenceLabels, pixelsPerImage), neighbourCount)
    {
    }

    /// <summary>A judge over <paramref name="references"/>, read a block at a time: a set read from IDX files stays bytes.</summary>
    public PixelNearestNeighbours(MnistImages references, int neighbourCount = 10)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(neighbourCount, 1);
        if (references.Count < neighbourCount)
        {
            throw new ArgumentException($"{neighbourCount} neighbours need at least as many reference images, got {references.Count}.", nameof(references));
        }

        this.references = references;
        pixelsPerImage = references.PixelsPerImage;
        NeighbourCount = neighbourCount;
        labelCount = references.Labels.Max() + 1;
        referenceSquaredNorms = new float[references.Count];
        var block = new float[Math.Min(ReferenceBlock, references.Count) * pixelsPerImage];
        for (int first = 0; first < references.Count; first += ReferenceBlock)
        {
            int count = Math.Min(ReferenceBlock, references.Count - first);
            references.CopyPixels(first, count, block);
            for (int i = 0; i < count; i++)
            {
                ReadOnlySpan<float> image = block.AsSpan(i * pixelsPerImage, pixelsPerImage);
                referenceSquaredNorms[first + i] = TensorPrimitives.Dot(image, image);
            }
        }
    }

    /// <summary>Neighbours consulted per image.</summary>
    public int NeighbourCount { get; }

    /// <summary>Votes for each image in <paramref name="images"/> (row-major, pixels per image as constructed).</summary>
    public NeighbourVote[] Classify(ReadOnlySpan<float> images)
    {
        if (images.Length % pixelsPerImage != 0)
        {
            throw new ArgumentException($"{images.Length} values are not a whole number of {pixelsPerImage}-pixel images.", nameof(images));
        }

        float[] queries = images.ToArray();
        int count = queries.Length / pixelsPerImage;
        int k = NeighbourCount;
        // Each query's k nearest so far (distances ascending, and their labels), carried from block to block: every
        // query still meets the references in index order, so ties resolve as in one pass over all of them.
        var nearest = new float[count * k];
        Array.Fill(nearest, float.PositiveInfinity);
        var nearestLabels = new byte[count * k];
        var queryNorms = new float[count];
        for (int q = 0; q < count; q++)
        {
            ReadOnlySpan<float> query = queries.AsSpan(q * pixelsPerImage, pixelsPerImage);
            queryNorms[q] = TensorPrimitives.Dot(query, query);
        }

        byte[] referenceLabels = references.Labels;
        var block = new float[Math.Min(ReferenceBlock, references.Count) * pixelsPerImage];
        for (int first = 0; first < references.Count; first += ReferenceBlock)
        {
            int blockCount = Math.Min(ReferenceBlock, references.Count - first);
            references.CopyPixels(first, blockCount, block);
            Parallel.For(0, count, q =>
            {
                ReadOnlySpan<float> query = queries.AsSpan(q * pixelsPerImage, pixelsPerImage);
                Span<float> distances = nearest.AsSpan(q * k, k);
                Span<byte> labels = nearestLabels.AsSpan(q * k, k);
                for (int r = 0; r < blockCount; r++)
                {
                    // |q - r|^2 = |q|^2 + |r|^2 - 2 q.r: one dot product per pair.
                    float distance = queryNorms[q] + referenceSquaredNorms[first + r] - 2 * TensorPrimitives.Dot(query, block.AsSpan(r * pixelsPerImage, pixelsPerImage));
                    if (distance < distances[^1])
                    {
                        Insert(distances, labels, distance, referenceLabels[first + r]);
                    }
                }
            });
        }

        var votes = new NeighbourVote[count];
        var tally = new int[labelCount];
        for (int q = 0; q < count; q++)
        {
            votes[q] = Vote(nearestLabels.AsSpan(q * k, k), tally);
        }

        return votes;
    }

    private static MnistImages Check(float[] referencePixels, byte[] referenceLabels, int pixelsPerImage)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(pixelsPerImage, 1);
        if (referencePixels.Length != (long)referenceLabels.Length * pixelsPerImage)
        {
            throw new ArgumentException($"Expected {referenceLabels.Length} reference images x {pixelsPerImage} pixels = {(long)referenceLabels.Length * pixelsPerImage} values, got {referencePixels.Length}.", nameof(referencePixels));
        }

        return new MnistImages(1, pixelsPerImage, referencePixels, referenceLabels);
    }

    private static void Insert(Span<float> distances, Span<byte> labels, float distance, byte label)
    {
        int position = distances.Length - 1;
        while (position > 0 && distances[position - 1] > distance)
        {
            distances[position] = distances[position - 1];
            labels[position] = labels[position - 1];
            position--;
        }

        distances[position] = distance;
        labels[position] = label;
    }

    private static NeighbourVote Vote(ReadOnlySpan<byte> labels, int[] votes)
    {
        Array.Clear(votes);
        foreach (byte label in labels)
        {
            votes[label]++;
        }

        int most = votes.Max();
        // Labels are sorted nearest first: the first label with the most votes wins ties.
        foreach (byte label in labels)
        {
            if (votes[label] == most)
            {
                return new NeighbourVote(label, (double)most / labels.Length);
            }
        }

        throw new InvalidOperationException("No label was voted for.");
    }
}
