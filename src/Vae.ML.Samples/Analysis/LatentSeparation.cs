using Vae.ML.Samples.Reporting;

namespace Vae.ML.Samples.Analysis;

/// <summary>
/// Measures the report's claim "digits form distinct clusters" on latent means: leave-one-out k-nearest-neighbour
/// accuracy (how often the majority digit of a point's k nearest neighbours is its own digit) and the mean
/// silhouette coefficient with digits as clusters. Exact O(n^2) computation; 10,000 points take well under a second
/// per core.
/// </summary>
internal static class LatentSeparation
{
    /// <summary>Default neighbour count of the k-NN accuracy.</summary>
    public const int DefaultNeighbourCount = 5;

    /// <summary>Scores <paramref name="latents"/> (row-major, <paramref name="dimensions"/> per point) against <paramref name="labels"/>.</summary>
    /// <exception cref="ArgumentException">Sizes do not match, fewer than two points, or a value is not finite.</exception>
    public static LatentSeparationSummary Measure(ReadOnlySpan<float> latents, int dimensions, ReadOnlySpan<byte> labels, int neighbourCount = DefaultNeighbourCount)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(dimensions, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(neighbourCount, 1);
        int count = labels.Length;
        if (latents.Length != (long)count * dimensions)
        {
            throw new ArgumentException($"Expected {count} points x {dimensions} dimensions = {(long)count * dimensions} latent values (one point per label), got {latents.Length}.", nameof(latents));
        }

        if (count < 2)
        {
            throw new ArgumentException($"At least 2 points are needed to measure separation, got {count}.", nameof(labels));
        }

        for (int i = 0; i < latents.Length; i++)
        {
            if (!float.IsFinite(latents[i]))
            {
                throw new ArgumentException($"Latent value of point {i / dimensions}, dimension {i % dimensions} is {latents[i]}; expected a finite number.", nameof(latents));
            }
        }

        float[] points = latents.ToArray();
        byte[] classes = labels.ToArray();
        int classCount = classes.Max() + 1;
        int[] classSizes = new int[classCount];
        foreach (byte label in classes)
        {
            classSizes[label]++;
        }

        int k = Math.Min(neighbourCount, count - 1);
        int correct = 0;
        int[] correctPerClass = new int[classCount];
        double silhouetteSum = 0;
        int silhouetteCount = 0;
        object gate = new();

        Parallel.For(0, count,
            () => (Correct: 0, CorrectPerClass: new int[classCount], SilhouetteSum: 0.0, SilhouetteCount: 0, ClassDistances: new double[classCount], NearestDistances: new double[k], NearestLabels: new byte[k]),
            (i, _, state) =>
            {
                Array.Clear(state.ClassDistances);
                Array.Fill(state.NearestDistances, double.PositiveInfinity);
                ReadOnlySpan<float> self = points.AsSpan(i * dimensions, dimensions);
                for (int j = 0; j < count; j++)
                {
                    if (j == i)
                    {
                        continue;
                    }

                    double squared = 0;
                    ReadOnlySpan<float> other = points.AsSpan(j * dimensions, dimensions);
                    for (int d = 0; d < dimensions; d++)
                    {
                        double difference = self[d] - other[d];
                        squared += difference * difference;
                    }

                    double distance = Math.Sqrt(squared);
                    state.ClassDistances[classes[j]] += distance;
                    InsertNearest(state.NearestDistances, state.NearestLabels, distance, classes[j]);
                }

                if (Vote(state.NearestDistances, state.NearestLabels, classCount) == classes[i])
                {
                    state.Correct++;
                    state.CorrectPerClass[classes[i]]++;
                }

                double? silhouette = Silhouette(state.ClassDistances, classSizes, classes[i]);
                if (silhouette is double s)
                {
                    state.SilhouetteSum += s;
                    state.SilhouetteCount++;
                }

                return state;
            },
            state =>
            {
                lock (gate)
                {
                    correct += state.Correct;
                    for (int c = 0; c < classCount; c++)
                    {
                        correctPerClass[c] += state.CorrectPerClass[c];
                    }

                    silhouetteSum += state.SilhouetteSum;
                    silhouetteCount += state.SilhouetteCount;
                }
            });

        return new LatentSeparationSummary
        {
            Dimensions = dimensions,
            Images = count,
            NeighbourCount = k,
            NearestNeighbourAccuracy = (double)correct / count,
            NearestNeighbourAccuracyPerLabel = Enumerable.Range(0, classCount)
                .Select(c => classSizes[c] == 0 ? double.NaN : (double)correctPerClass[c] / classSizes[c]).ToArray(),
            Silhouette = silhouetteCount == 0 ? 0 : silhouetteSum / silhouetteCount,
        };
    }

    /// <summary>Keeps the k smallest distances sorted ascending (k is small, insertion is cheapest).</summary>
    private static void InsertNearest(double[] distances, byte[] labels, double distance, byte label)
    {
        int position = distances.Length - 1;
        if (!(distance < distances[position]))
        {
            return;
        }

        while (position > 0 && distances[position - 1] > distance)
        {
            distances[position] = distances[position - 1];
            labels[position] = labels[position - 1];
            position--;
        }

        distances[position] = distance;
        labels[position] = label;
    }

    /// <summary>Majority label among the neighbours; a tie goes to the tied label with the nearest member.</summary>
    private static int Vote(double[] distances, byte[] labels, int classCount)
    {
        Span<int> votes = stackalloc int[classCount];
        int found = 0;
        while (found < labels.Length && !double.IsPositiveInfinity(distances[found]))
        {
            votes[labels[found]]++;
            found++;
        }

        int mostVotes = 0;
        foreach (int v in votes)
        {
            mostVotes = Math.Max(mostVotes, v);
        }

        // Neighbours are sorted nearest first, so the first one with a winning label decides ties.
        for (int n = 0; n < found; n++)
        {
            if (votes[labels[n]] == mostVotes)
            {
                return labels[n];
            }
        }

        return -1;
    }

    /// <summary>Silhouette of one point; null when its class has no other member (undefined).</summary>
    private static double? Silhouette(double[] classDistanceSums, int[] classSizes, int ownClass)
    {
        int ownOthers = classSizes[ownClass] - 1;
        if (ownOthers == 0)
        {
            return null;
        }

        double within = classDistanceSums[ownClass] / ownOthers;
        double nearestOther = double.PositiveInfinity;
        for (int c = 0; c < classSizes.Length; c++)
        {
            if (c != ownClass && classSizes[c] > 0)
            {
                nearestOther = Math.Min(nearestOther, classDistanceSums[c] / classSizes[c]);
            }
        }

        if (double.IsPositiveInfinity(nearestOther))
        {
            return null;
        }

        double denominator = Math.Max(within, nearestOther);
        return denominator == 0 ? 0 : (nearestOther - within) / denominator;
    }
}
