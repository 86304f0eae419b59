using System.Numerics.Tensors;

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
    private readonly float[] referencePixels;
    private readonly byte[] referenceLabels;
    private readonly float[] referenceSquaredNorms;
    private readonly int pixelsPerImage;
    private readonly int labelCount;

    public PixelNearestNeighbours(float[] referencePixels, byte[] referenceLabels, int pixelsPerImage, int neighbourCount = 10)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(pixelsPerImage, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(neighbourCount, 1);
        if (referencePixels.Length != (long)referenceLabels.Length * pixelsPerImage)
        {
            throw new ArgumentException($"Expected {referenceLabels.Length} reference images x {pixelsPerImage} pixels = {(long)referenceLabels.Length * pixelsPerImage} values, got {referencePixels.Length}.", nameof(referencePixels));
        }

        if (referenceLabels.Length < neighbourCount)
        {
            throw new ArgumentException($"{neighbourCount} neighbours need at least as many reference images, got {referenceLabels.Length}.", nameof(referenceLabels));
        }

        this.referencePixels = referencePixels;
        this.referenceLabels = referenceLabels;
        this.pixelsPerImage = pixelsPerImage;
        NeighbourCount = neighbourCount;
        labelCount = referenceLabels.Max() + 1;
        referenceSquaredNorms = new float[referenceLabels.Length];
        for (int i = 0; i < referenceLabels.Length; i++)
        {
            ReadOnlySpan<float> image = referencePixels.AsSpan(i * pixelsPerImage, pixelsPerImage);
            referenceSquaredNorms[i] = TensorPrimitives.Dot(image, image);
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
        var votes = new NeighbourVote[count];
        Parallel.For(0, count,
            () => (Distances: new float[NeighbourCount], Labels: new byte[NeighbourCount], Votes: new int[labelCount]),
            (q, _, scratch) =>
            {
                ReadOnlySpan<float> query = queries.AsSpan(q * pixelsPerImage, pixelsPerImage);
                Array.Fill(scratch.Distances, float.PositiveInfinity);
                float queryNorm = TensorPrimitives.Dot(query, query);
                for (int r = 0; r < referenceLabels.Length; r++)
                {
                    // |q - r|^2 = |q|^2 + |r|^2 - 2 q.r: one dot product per pair.
                    float distance = queryNorm + referenceSquaredNorms[r] - 2 * TensorPrimitives.Dot(query, referencePixels.AsSpan(r * pixelsPerImage, pixelsPerImage));
                    if (distance < scratch.Distances[^1])
                    {
                        Insert(scratch.Distances, scratch.Labels, distance, referenceLabels[r]);
                    }
                }

                votes[q] = Vote(scratch.Labels, scratch.Votes);
                return scratch;
            },
            _ => { });
        return votes;
    }

    private static void Insert(float[] distances, byte[] labels, float distance, byte label)
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

    private static NeighbourVote Vote(byte[] labels, int[] votes)
    {
        Array.Clear(votes);
        foreach (byte label in labels)
        {
            votes[label]++;
        }

        int most = votes.Max();
        // Labels are sorted nearest first: the first label with the most votes wins ties.
        byte winner = labels.First(label => votes[label] == most);
        return new NeighbourVote(winner, (double)most / labels.Length);
    }
}
