using Microsoft.ML;
using Microsoft.ML.Data;
using Vae.ML.Tests.Core;

namespace Vae.ML.Tests.Reliability;

/// <summary>Scoring (cursors, prediction engine, array API) never throws on a value; schema problems still throw.</summary>
public class ScoringTests(ScoringModelFixture fixture) : IClassFixture<ScoringModelFixture>
{
    private const int Width = SyntheticData.Width;

    private readonly VaeTransformer _vae = fixture.Vae;

    private sealed class PixelRow
    {
        [VectorType(Width)]
        public float[] Features { get; set; } = [];
    }

    private sealed class Prediction
    {
        [VectorType(2)]
        public float[] Latent { get; set; } = [];

        [VectorType(2)]
        public float[] LatentLogVariance { get; set; } = [];

        [VectorType(Width)]
        public float[] Reconstruction { get; set; } = [];

        public float Score { get; set; }
    }

    private static SyntheticData.Row[] Copy(SyntheticData.Row[] rows)
        => rows.Select(r => new SyntheticData.Row { Features = r.Features.ToArray(), Label = r.Label }).ToArray();

    [Fact]
    public void Cursor_gives_NaN_outputs_for_rows_with_NaN_or_infinity_and_leaves_the_other_rows_unchanged()
    {
        fixture.TakeWarnings();
        var rows = SyntheticData.Rows(60, seed: 9);
        var bad = Copy(rows);
        bad[6].Features[5] = float.NaN;
        bad[9].Features[0] = float.PositiveInfinity;
        bad[20].Features[Width - 1] = float.NegativeInfinity;
        int[] badRows = [6, 9, 20];
        // The clean run has other (valid) values in those rows: the remaining rows must not notice the difference.
        var clean = Copy(rows);
        foreach (var r in badRows)
        {
            clean[r].Features = rows[0].Features.ToArray();
        }

        var scored = ScoredRows.Read(_vae.Transform(RowSource.Of(bad)));
        var expected = ScoredRows.Read(_vae.Transform(RowSource.Of(clean)));

        scored.Index.Should().Equal(Enumerable.Range(0, 60).Select(i => (long)i));
        for (var i = 0; i < 60; i++)
        {
            if (badRows.Contains(i))
            {
                scored.Score[i].Should().Be(float.NaN);
                scored.Latent[i].Should().OnlyContain(v => float.IsNaN(v)).And.HaveCount(2);
                scored.LogVariance[i].Should().OnlyContain(v => float.IsNaN(v)).And.HaveCount(2);
                scored.Reconstruction[i].Should().OnlyContain(v => float.IsNaN(v)).And.HaveCount(Width);
            }
            else
            {
                scored.Score[i].Should().Be(expected.Score[i], $"row {i} is not affected by the bad rows of its batch");
                scored.Latent[i].Should().Equal(expected.Latent[i]);
                scored.LogVariance[i].Should().Equal(expected.LogVariance[i]);
                scored.Reconstruction[i].Should().Equal(expected.Reconstruction[i]);
            }
        }

        var warning = fixture.TakeWarnings().Should().ContainSingle().Which;
        warning.Should().Contain("VAE scoring (cursor): 3 of 60 rows had NaN or infinite values; their outputs are NaN");
    }

    [Fact]
    public void Out_of_range_rows_are_scored_as_they_are_and_counted_in_one_warning_per_cursor()
    {
        fixture.TakeWarnings();
        var rows = SyntheticData.Rows(40, seed: 11);
        var inRangeScores = _vae.Score(SyntheticData.Matrix(rows));
        var reconstruction = _vae.Reconstruct(rows[3].Features);
        // Row 3: 2 where the model expects a dark pixel, -1 where it expects a bright one: far from anything it knows.
        rows[3].Features = reconstruction.Select(p => p < 0.5f ? 2f : -1f).ToArray();
        // Rows 7 and 8: pixels that were not scaled to [0, 1], a common mistake.
        rows[7].Features = rows[7].Features.Select(v => v * 255f).ToArray();
        rows[8].Features = rows[8].Features.Select(v => v * 255f).ToArray();
        var data = RowSource.Of(rows);

        var scored = ScoredRows.Read(_vae.Transform(data));

        scored.Score.Should().OnlyContain(s => float.IsFinite(s));
        scored.Score[3].Should().BeGreaterThan(inRangeScores.Where((_, i) => i is not (3 or 7 or 8)).Max(),
            "an input unlike anything in training is an anomaly");
        foreach (var i in new[] { 3, 7, 8 })
        {
            // "As it is": the Score is BCE(x, decoder(μ)) + β·KL computed on the unclipped x.
            var expected = BceFromProbabilities(rows[i].Features, scored.Reconstruction[i]) + _vae.Beta * Kl(scored.Latent[i], scored.LogVariance[i]);
            ((double)scored.Score[i]).Should().BeApproximately(expected, Math.Max(1e-3 * Math.Abs(expected), 0.05), $"row {i}");
        }

        var warning = fixture.TakeWarnings().Should().ContainSingle().Which;
        warning.Should().Contain("VAE scoring (cursor): 3 of 40 rows had values outside [0, 1]");
        warning.Should().NotContain("NaN or infinite");

        // A second pass is a second cursor: one more warning, with its own count.
        var transformed = _vae.Transform(data);
        using (var cursor = transformed.GetRowCursor([transformed.Schema["Score"]]))
        {
            var score = cursor.GetGetter<float>(transformed.Schema["Score"]);
            var value = 0f;
            for (var i = 0; i < 5 && cursor.MoveNext(); i++)
            {
                score(ref value);
            }
        }

        fixture.TakeWarnings().Should().ContainSingle().Which.Should().Contain("1 of 5 rows had values outside [0, 1]",
            "only the rows the cursor served are counted, not the ones it read ahead");
    }

    [Fact]
    public void Prediction_engine_scores_bad_rows_as_NaN_and_goes_on_with_the_next_row()
    {
        fixture.TakeWarnings();
        var ml = fixture.Context;
        var rows = SyntheticData.Rows(3, seed: 12);
        var withNaN = rows[1].Features.ToArray();
        withNaN[10] = float.NaN;
        var outOfRange = rows[2].Features.Select(v => v * 3f).ToArray();

        using (var engine = ml.Model.CreatePredictionEngine<PixelRow, Prediction>(_vae, new PredictionEngineOptions { OwnsTransformer = false }))
        {
            var first = engine.Predict(new PixelRow { Features = rows[0].Features });
            var nan = engine.Predict(new PixelRow { Features = withNaN });
            var afterNaN = engine.Predict(new PixelRow { Features = rows[0].Features });
            var odd = engine.Predict(new PixelRow { Features = outOfRange });

            nan.Score.Should().Be(float.NaN);
            nan.Latent.Should().HaveCount(2).And.OnlyContain(v => float.IsNaN(v));
            nan.LatentLogVariance.Should().HaveCount(2).And.OnlyContain(v => float.IsNaN(v));
            nan.Reconstruction.Should().HaveCount(Width).And.OnlyContain(v => float.IsNaN(v));
            afterNaN.Score.Should().Be(first.Score);
            afterNaN.Latent.Should().Equal(_vae.Encode(rows[0].Features));
            odd.Score.Should().Be(_vae.Score(outOfRange)[0]);
        }

        // An engine lives long and is never told when a "pass" ends: it warns once, at its first odd row.
        var warning = fixture.TakeWarnings().Should().ContainSingle(w => w.Contains("prediction engine", StringComparison.Ordinal)).Which;
        warning.Should().Contain("1 of 2 rows had NaN or infinite values");
    }

    [Fact]
    public void Array_API_gives_NaN_rows_for_non_finite_inputs_and_one_warning_per_call()
    {
        fixture.TakeWarnings();
        var rows = SyntheticData.Rows(5, seed: 13);
        var clean = SyntheticData.Matrix(rows);
        var bad = clean.ToArray();
        bad[(1 * Width) + 7] = float.NaN;
        bad[(3 * Width) + 0] = float.NegativeInfinity;
        bad[(4 * Width) + 2] = 1.5f;
        var reference = clean.ToArray();
        Array.Copy(clean, 0, reference, 1 * Width, Width);
        Array.Copy(clean, 0, reference, 3 * Width, Width);
        reference[(4 * Width) + 2] = 1.5f;

        var mu = _vae.Encode(bad, out var logVariances);
        var expectedMu = _vae.Encode(reference, out var expectedLogVariances);
        var scores = _vae.Score(bad);
        var expectedScores = _vae.Score(reference);
        var reconstructions = _vae.Reconstruct(bad);
        var expectedReconstructions = _vae.Reconstruct(reference);
        var muOnly = _vae.Encode(bad);

        for (var row = 0; row < 5; row++)
        {
            var nan = row is 1 or 3;
            Check(mu, expectedMu, row, 2, nan);
            Check(logVariances, expectedLogVariances, row, 2, nan);
            Check(muOnly, expectedMu, row, 2, nan);
            Check(scores, expectedScores, row, 1, nan);
            Check(reconstructions, expectedReconstructions, row, Width, nan);
        }

        float[] latents = [0.5f, -0.5f, float.NaN, 0f, 1f, float.PositiveInfinity];
        var decoded = _vae.Decode(latents);
        float[] finiteLatents = [0.5f, -0.5f, 0.1f, 0f, 1f, 2f];
        decoded.AsSpan(0, Width).ToArray().Should().Equal(_vae.Decode(finiteLatents).AsSpan(0, Width).ToArray());
        decoded.AsSpan(Width, 2 * Width).ToArray().Should().OnlyContain(v => float.IsNaN(v));

        // Four calls on the bad rows, three on the reference rows (with one out-of-range row): one warning per call.
        // Decode takes latents, which have no training range: it warns about nothing.
        var warnings = fixture.TakeWarnings();
        warnings.Should().HaveCount(7);
        warnings.Where(w => w.Contains("2 of 5 rows had NaN or infinite values", StringComparison.Ordinal)).Should().HaveCount(4)
            .And.OnlyContain(w => w.Contains("1 of 5 rows had values outside [0, 1]"));
        warnings.Should().ContainSingle(w => w.Contains("VAE scoring (VaeTransformer.Score): 1 of 5 rows had values outside [0, 1]") && !w.Contains("NaN"));
        warnings.Should().ContainSingle(w => w.Contains("VAE scoring (VaeTransformer.Reconstruct): 1 of 5 rows had values outside [0, 1]") && w.Contains("NaN"));
    }

    [Theory]
    [InlineData(65)]
    [InlineData(63)]
    [InlineData(129)]
    public void Array_API_names_both_numbers_when_the_length_is_not_a_whole_number_of_rows(int length)
    {
        var values = new float[length];
        foreach (var call in new Action[] { () => _vae.Score(values), () => _vae.Encode(values), () => _vae.Encode(values, out _), () => _vae.Reconstruct(values) })
        {
            call.Should().Throw<ArgumentException>().WithMessage($"'inputs' has {length} values, which is not a multiple of 64 (the values per row)*")
                .Which.ParamName.Should().Be("inputs");
        }

        ((Action)(() => _vae.Decode(new float[3]))).Should().Throw<ArgumentException>()
            .WithMessage("'latents' has 3 values, which is not a multiple of 2*").Which.ParamName.Should().Be("latents");
        _vae.Score([]).Should().BeEmpty("zero rows is a whole number of rows");
    }

    [Fact]
    public void Schema_problems_still_throw_at_Transform()
    {
        var ml = fixture.Context;
        var wrongSize = ml.Data.LoadFromEnumerable(new[] { new { Features = new float[3] } });
        ((Action)(() => _vae.Transform(wrongSize))).Should().Throw<ArgumentOutOfRangeException>().WithMessage("*'Features'*");
        var noFeatures = ml.Data.LoadFromEnumerable(new[] { new { Pixels = 1f } });
        ((Action)(() => _vae.Transform(noFeatures))).Should().Throw<ArgumentOutOfRangeException>().WithMessage("*'Features' (FeatureColumnName) was not found*");
    }

    [Fact]
    public void A_cursor_whose_input_getter_fails_does_not_leak_its_input_cursor()
    {
        var rows = SyntheticData.Rows(10);

        var failsAtOnce = RowSource.Of(rows);
        failsAtOnce.FailFeatureGetterOnCursor = 0;
        var scored = _vae.Transform(failsAtOnce);
        ((Action)(() => scored.GetRowCursor(scored.Schema))).Should().Throw<InvalidOperationException>().WithMessage("*fails on purpose*");
        failsAtOnce.OpenCursors.Should().Be(0);
    }

    private static void Check(float[] actual, float[] expected, int row, int width, bool nan)
    {
        var values = actual.AsSpan(row * width, width).ToArray();
        if (nan)
        {
            values.Should().OnlyContain(v => float.IsNaN(v), $"row {row} has a non-finite input");
        }
        else
        {
            values.Should().Equal(expected.AsSpan(row * width, width).ToArray(), $"row {row} is not affected by the others");
        }
    }

    private static double BceFromProbabilities(float[] x, float[] p)
        => x.Zip(p).Sum(t => -(t.First * Math.Log(t.Second)) - ((1 - t.First) * Math.Log(1 - t.Second)));

    private static double Kl(float[] mu, float[] logVariance)
        => -0.5 * mu.Zip(logVariance).Sum(t => 1 + t.Second - (t.First * t.First) - Math.Exp(t.Second));
}
