using Microsoft.ML;
using Microsoft.ML.Data;
using Vae.ML.Datasets;
using Vae.ML.Samples.Analysis;

namespace Vae.ML.Tests.Memory;

/// <summary>
/// Images read from IDX files stay bytes (one per pixel) until someone asks for the float array: the data view, the
/// copies and the readability judge scale them as they read, to the same floats as byte / 255.
/// </summary>
public sealed class ByteBackedImagesTests
{
    private static (MnistImages Bytes, float[] Expected) Images(int count, int pixels, int seed)
    {
        var random = new Random(seed);
        var bytes = new byte[count * pixels];
        random.NextBytes(bytes);
        var labels = Enumerable.Range(0, count).Select(_ => (byte)random.Next(10)).ToArray();
        return (MnistImages.FromPixelBytes(1, pixels, bytes, labels), bytes.Select(b => b / 255f).ToArray());
    }

    [Fact]
    public void The_view_serves_byte_over_255_without_making_the_float_array()
    {
        var (images, expected) = Images(5, 6, seed: 1);

        var view = images.ToDataView(new MLContext(seed: 1));
        float[][] rows = view.GetColumn<float[]>(Mnist.FeaturesColumnName).ToArray();

        rows.SelectMany(r => r).Should().Equal(expected, "byte / 255 exactly, as torchvision's ToTensor");
        view.GetColumn<uint>(Mnist.LabelColumnName).Should().Equal(images.Labels.Select(l => (uint)l));
        images.HoldsFloatPixels.Should().BeFalse("reading the view must not create a float copy of the set");
        images.Pixels.Should().Equal(expected);
        images.HoldsFloatPixels.Should().BeTrue();
    }

    [Fact]
    public void CopyPixels_and_Take_keep_bytes_as_bytes()
    {
        var (images, expected) = Images(4, 3, seed: 2);

        images.CopyPixels(1, 2).Should().Equal(expected[3..9]);
        var destination = new float[7];
        images.CopyPixels(3, 1, destination);
        destination[..3].Should().Equal(expected[9..12]);
        var first = images.Take(2);
        first.HoldsFloatPixels.Should().BeFalse();
        first.CopyPixels(0, 2).Should().Equal(expected[..6]);
        images.HoldsFloatPixels.Should().BeFalse();

        FluentActions.Invoking(() => images.CopyPixels(3, 2)).Should().Throw<ArgumentOutOfRangeException>().WithMessage("*Images 3 to 4*[0, 4)*");
        FluentActions.Invoking(() => images.CopyPixels(0, 3, new float[8])).Should().Throw<ArgumentException>().WithMessage("*3 images need 9 values*8*");
    }

    [Fact]
    public void A_float_backed_set_copies_its_own_values()
    {
        var images = new MnistImages(1, 2, [0.5f, 0.25f, 2f, 3f], [0, 1]);

        images.CopyPixels(1, 1).Should().Equal(2f, 3f);
        images.ToDataView(new MLContext(seed: 1)).GetColumn<float[]>(Mnist.FeaturesColumnName).Last().Should().Equal(2f, 3f);
    }

    [Fact]
    public void The_blockwise_judge_votes_as_a_pass_over_all_references_in_order()
    {
        // More references than one block (2,048), so queries carry their nearest neighbours across blocks.
        var (references, referencePixels) = Images(5000, 8, seed: 3);
        var (queries, queryPixels) = Images(40, 8, seed: 4);
        const int k = 5;

        NeighbourVote[] votes = new PixelNearestNeighbours(references, k).Classify(queryPixels);

        references.HoldsFloatPixels.Should().BeFalse("the judge scales one block of references at a time");
        for (int q = 0; q < queries.Count; q++)
        {
            // Brute force: distances as the judge computes them, stable sort (earlier reference wins a tie).
            float[] query = queryPixels[(q * 8)..((q + 1) * 8)];
            float queryNorm = System.Numerics.Tensors.TensorPrimitives.Dot<float>(query, query);
            byte[] nearest = Enumerable.Range(0, references.Count)
                .Select(r =>
                {
                    float[] reference = referencePixels[(r * 8)..((r + 1) * 8)];
                    float norm = System.Numerics.Tensors.TensorPrimitives.Dot<float>(reference, reference);
                    return (Distance: queryNorm + norm - 2 * System.Numerics.Tensors.TensorPrimitives.Dot<float>(query, reference), Label: references.Labels[r]);
                })
                .OrderBy(n => n.Distance).Take(k).Select(n => n.Label).ToArray();
            int most = nearest.GroupBy(l => l).Max(g => g.Count());
            byte winner = nearest.First(l => nearest.Count(x => x == l) == most);
            votes[q].Should().Be(new NeighbourVote(winner, (double)most / k), $"query {q}");
        }
    }
}
