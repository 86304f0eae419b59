using Microsoft.ML.Data;
using Vae.ML.Data;
using Vae.ML.Tests.Core;
using Vae.ML.Tests.Reliability;

namespace Vae.ML.Tests.Scoring;

/// <summary>
/// A scoring cursor classifies each row while it copies it into the model's input rows, and cursors reuse one set of
/// input rows: neither may change an output.
/// </summary>
public class CursorInputTests(ScoringModelFixture fixture) : IClassFixture<ScoringModelFixture>
{
    private readonly VaeTransformer _vae = fixture.Vae;

    public static TheoryData<int, bool> Widths()
    {
        var data = new TheoryData<int, bool>();
        foreach (var width in new[] { 1, 7, 8, 9, 16, 31, 64, 100, 784 })
        {
            data.Add(width, true);
            data.Add(width, false);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void Copying_and_classifying_in_one_pass_agrees_with_copying_then_classifying(int width, bool unitRange)
    {
        float[] odd = [float.NaN, float.PositiveInfinity, float.NegativeInfinity, -1e-7f, 1.0000001f, -0f, 0f, 1f, 3e38f, -2f];
        var random = new Random(width);
        for (var trial = 0; trial < 200; trial++)
        {
            var values = Enumerable.Range(0, width).Select(_ => random.NextSingle()).ToArray();
            // Most rows get one or two odd values at random places (the vector body or the scalar tail); some none.
            for (var k = trial % 3; k > 0; k--)
            {
                values[random.Next(width)] = odd[random.Next(odd.Length)];
            }

            var fused = new float[width];
            var kind = FeatureColumn.CopyDenseClassified(new VBuffer<float>(width, values), fused, unitRange, "Features", trial, "Input data");

            fused.Should().Equal(values, "the copy is exact (NaN included)");
            kind.Should().Be(FeatureColumn.Classify(values, unitRange), $"row [{string.Join(", ", values)}]");
        }
    }

    [Fact]
    public void A_sparse_row_is_copied_densely_and_classified()
    {
        var sparse = new VBuffer<float>(6, 2, [0.5f, float.NaN], [1, 4]);
        var dense = new float[6];
        dense.AsSpan().Fill(7f);

        FeatureColumn.CopyDenseClassified(sparse, dense, unitRange: true, "Features", 3, "Input data").Should().Be(RowValues.NotFinite);
        dense.Should().Equal(0f, 0.5f, 0f, 0f, float.NaN, 0f);
        var wrongSize = () => FeatureColumn.CopyDenseClassified(new VBuffer<float>(5, new float[5]), dense, true, "Features", 3, "Input data");
        wrongSize.Should().Throw<ArgumentException>().WithMessage("*Input data, column 'Features', row 3: vector has 5 values; expected 6*");
    }

    [Fact]
    public void Cursors_that_reuse_the_input_rows_score_as_cursors_with_fresh_ones()
    {
        // The first cursor fills all 1,024 input rows and zeroes its NaN row in them (the model scores a NaN row's
        // network input as zeros); the cursors after it reuse those rows for fewer rows (a partial batch), unless
        // another cursor holds them, in which case they get fresh ones.
        var first = SyntheticData.Rows(1500, seed: 21);
        var zeroed = first.Select(r => new SyntheticData.Row { Features = r.Features.ToArray(), Label = r.Label }).ToArray();
        first[1100].Features[3] = float.NaN;
        Array.Clear(zeroed[1100].Features);
        var second = SyntheticData.Rows(300, seed: 22);
        var third = SyntheticData.Rows(40, seed: 23);

        var expectedFirst = ScoredRows.Read(_vae.Transform(RowSource.Of(zeroed)));
        var scoredFirst = ScoredRows.Read(_vae.Transform(RowSource.Of(first)));
        var secondReusing = ScoredRows.Read(_vae.Transform(RowSource.Of(second)));
        var thirdView = _vae.Transform(RowSource.Of(third));
        var secondView = _vae.Transform(RowSource.Of(second));
        ScoredRows thirdAlongside, secondFresh;
        using (var thirdCursor = thirdView.GetRowCursor(thirdView.Schema))
        using (var secondCursor = secondView.GetRowCursor(secondView.Schema))
        {
            // The third cursor takes the spare input rows at its first batch, so the second gets fresh ones.
            thirdCursor.MoveNext().Should().BeTrue();
            secondFresh = ScoredRows.Read(secondCursor, secondView.Schema);
            thirdAlongside = ScoredRows.Read(thirdCursor, thirdView.Schema);
        }

        scoredFirst.Latent[1100].Should().OnlyContain(v => float.IsNaN(v));
        scoredFirst.Score[1100].Should().Be(float.NaN);
        for (var i = 0; i < first.Length; i++)
        {
            if (i != 1100)
            {
                scoredFirst.Latent[i].Should().Equal(expectedFirst.Latent[i], $"row {i}");
                scoredFirst.Score[i].Should().Be(expectedFirst.Score[i], $"row {i}");
            }
        }

        secondReusing.Latent.SelectMany(l => l).Should().Equal(secondFresh.Latent.SelectMany(l => l));
        secondReusing.Reconstruction.SelectMany(l => l).Should().Equal(secondFresh.Reconstruction.SelectMany(l => l));
        secondReusing.Score.Should().Equal(secondFresh.Score);
        thirdAlongside.Latent.SelectMany(l => l).Should().Equal(ScoredRows.Read(_vae.Transform(RowSource.Of(third))).Latent.Skip(1).SelectMany(l => l),
            "the third cursor's rows 1 to 39 (it had moved to row 0 before the second cursor was read)");
    }
}
