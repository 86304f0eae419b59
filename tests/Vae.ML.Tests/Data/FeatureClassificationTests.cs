using System.Numerics;
using Microsoft.ML;
using Microsoft.ML.Data;
using Vae.ML.Data;

namespace Vae.ML.Tests.Data;

/// <summary>
/// The scoring cursor's one-pass copy-and-check of each row (<see cref="FeatureColumn.CopyDenseClassified"/>) against
/// the plain rule (<see cref="FeatureColumn.Classify"/>: NaN or ±∞ anywhere → NotFinite; else, for the Bernoulli
/// model, a value outside [0, 1] → OutOfRange), with the odd value in the SIMD part of the row and in its scalar tail,
/// for both likelihoods; and the order in which the training rows come out of memory and out of a stream. Written
/// for the Data folder's Stryker run: its survivors were a fast path that answered "in range" too often and a stream
/// that never asked the view to shuffle.
/// </summary>
public class FeatureClassificationTests
{
    private static readonly int Lanes = Vector<float>.Count;

    // Two full SIMD blocks and a tail of three; a row shorter than one block; a row of exactly one block.
    public static TheoryData<int> Widths => new() { 2 * Vector<float>.Count + 3, Vector<float>.Count - 1, Vector<float>.Count };

    // RowValues is internal: the theory takes its name.
    public static TheoryData<bool, float, string> OddValues => new()
    {
        { true, 1.5f, nameof(RowValues.OutOfRange) },
        { true, -0.25f, nameof(RowValues.OutOfRange) },
        { true, float.NaN, nameof(RowValues.NotFinite) },
        { true, float.PositiveInfinity, nameof(RowValues.NotFinite) },
        { true, 1f, nameof(RowValues.InRange) },
        { true, 0f, nameof(RowValues.InRange) },
        { false, 1.5f, nameof(RowValues.InRange) },
        { false, -40f, nameof(RowValues.InRange) },
        { false, float.NaN, nameof(RowValues.NotFinite) },
        { false, float.NegativeInfinity, nameof(RowValues.NotFinite) },
    };

    [Theory]
    [MemberData(nameof(OddValues))]
    public void One_odd_value_anywhere_in_a_dense_row_gives_the_rules_answer_and_the_row_is_copied_exactly(bool unitRange, float odd, string expected)
    {
        foreach (var width in new[] { 2 * Lanes + 3, Lanes - 1, Lanes, 1 })
        {
            for (var at = 0; at < width; at++)
            {
                var row = Enumerable.Range(0, width).Select(i => 0.1f + 0.8f * i / width).ToArray();
                row[at] = odd;
                var dense = Enumerable.Repeat(-7f, width).ToArray();

                var result = FeatureColumn.CopyDenseClassified(new VBuffer<float>(width, row), dense, unitRange, "Features", 3, "Input data");

                result.ToString().Should().Be(expected, "width {0}, odd value {1} at {2}", width, odd, at);
                dense.Should().Equal(row, (a, b) => a.Equals(b), "width {0}: every value is copied", width);
            }
        }
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void A_row_of_ordinary_values_is_in_range_for_both_likelihoods(int width)
    {
        var row = Enumerable.Range(0, width).Select(i => (float)i / width).ToArray();
        foreach (var unitRange in new[] { true, false })
        {
            var dense = new float[width];
            FeatureColumn.CopyDenseClassified(new VBuffer<float>(width, row), dense, unitRange, "Features", 0, "Input data").Should().Be(RowValues.InRange);
            dense.Should().Equal(row);
        }
    }

    [Fact]
    public void A_sparse_row_is_copied_with_zeros_elsewhere_and_classified_by_its_dense_values()
    {
        var width = 2 * Lanes + 3;
        foreach (var (unitRange, value, expected) in new[] { (true, 0.5f, RowValues.InRange), (true, 2f, RowValues.OutOfRange), (false, 2f, RowValues.InRange), (false, float.NaN, RowValues.NotFinite) })
        {
            var dense = Enumerable.Repeat(-7f, width).ToArray(); // stale values from an earlier row
            var sparse = new VBuffer<float>(width, 2, [value, 0.25f], [1, width - 1]);

            FeatureColumn.CopyDenseClassified(sparse, dense, unitRange, "Features", 0, "Input data").Should().Be(expected);

            var want = new float[width];
            want[1] = value;
            want[width - 1] = 0.25f;
            dense.Should().Equal(want, (a, b) => a.Equals(b));
        }
    }

    [Fact]
    public void A_dense_row_of_the_wrong_length_is_refused_with_both_lengths()
    {
        var dense = new float[6];
        var act = () => FeatureColumn.CopyDenseClassified(new VBuffer<float>(5, new float[5]), dense, true, "Features", 9, "Input data");

        act.Should().Throw<ArgumentException>().WithMessage("Input data, column 'Features', row 9: vector has 5 values; expected 6.");
    }

    [Fact]
    public void In_memory_batches_cover_every_row_once_in_a_seeded_shuffle_with_a_short_last_batch()
    {
        const int rows = 20;
        using var matrix = FeatureMatrix.Allocate(rows, 2);
        for (var r = 0; r < rows; r++)
        {
            matrix.RowSpan(r, 1).Fill(r);
        }

        var batches = matrix.ReadShuffled(batchSize: 8, seed: 5).Select(b => b.Values.AsSpan(0, b.Rows * 2).ToArray()).ToList();

        batches.Select(b => b.Length / 2).Should().Equal(8, 8, 4);
        matrix.ReadShuffled(batchSize: 5, seed: 5).Select(b => b.Rows).Should().Equal([5, 5, 5, 5], "no empty batch after the last full one");
        var order = batches.SelectMany(b => b.Where((_, i) => i % 2 == 0)).Select(v => (int)v).ToList();
        order.Should().BeEquivalentTo(Enumerable.Range(0, rows));
        order.Should().NotEqual(Enumerable.Range(0, rows), "the rows are shuffled");
        batches.SelectMany(b => b.Where((_, i) => i % 2 == 0)).Should().Equal(batches.SelectMany(b => b.Where((_, i) => i % 2 == 1)), "a row's values stay together");

        var again = matrix.ReadShuffled(batchSize: 8, seed: 5).SelectMany(b => b.Values.AsSpan(0, b.Rows * 2).ToArray().Where((_, i) => i % 2 == 0));
        again.Select(v => (int)v).Should().Equal(order, "the same seed gives the same order");
    }

    [Fact]
    public void A_stream_asks_a_shufflable_view_for_a_shuffled_cursor_and_reads_any_other_view_in_order()
    {
        // Batches of 1 row: the stream's own shuffle works within a pool of 64 rows, so without the view's shuffle
        // the first 64 rows out are exactly the view's first 64.
        const int rows = 300;
        var ml = new MLContext(seed: 0);
        var data = Enumerable.Range(0, rows).Select(i => new Row { Features = [i / (float)rows] }).ToArray();
        var shufflable = ml.Data.Cache(ml.Data.LoadFromEnumerable(data)); // a cache can hand out shuffled cursors
        shufflable.CanShuffle.Should().BeTrue();
        var inOrder = ml.Data.LoadFromEnumerable(data);
        inOrder.CanShuffle.Should().BeFalse();

        int[] FirstPool(IDataView view)
            => new StreamedFeatures(view, "Features", 1, rows, "Training data", static () => { })
                .ReadShuffled(batchSize: 1, seed: 9).Take(64).Select(b => (int)Math.Round(b.Values[0] * rows)).ToArray();

        FirstPool(inOrder).Should().BeEquivalentTo(Enumerable.Range(0, 64));
        FirstPool(shufflable).Should().OnlyHaveUniqueItems().And.Contain(i => i >= 64, "the view's shuffle mixes rows from the whole data");
    }

    [Fact]
    public void A_view_that_fails_while_its_rows_are_counted_is_named_without_a_column()
    {
        // A lazy enumerable does not know its row count, so the trainer counts it with a cursor first.
        var rows = new Reliability.TrainingTestSupport.InstrumentedRows(Core.SyntheticData.Rows(20), (enumeration, row) =>
        {
            if (enumeration == 1 && row == 5)
            {
                throw new IOException("disk went away (simulated)");
            }
        });
        var ml = new MLContext(seed: 0);
        var fit = () => ml.Transforms.Vae(new VaeOptions { HiddenSizes = [4], Epochs = 1, Seed = 1, Device = "cpu" }).Fit(ml.Data.LoadFromEnumerable(rows));

        fit.Should().Throw<InvalidOperationException>()
            .WithMessage("Training data (counting its rows): the data view failed after 5 rows were read (IOException: disk went away (simulated)).")
            .WithInnerException<IOException>();
    }

    private sealed class Row
    {
        [VectorType(1)]
        public float[] Features { get; set; } = [];
    }
}
