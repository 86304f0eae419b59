using System.Collections.Concurrent;
using Microsoft.ML;
using Microsoft.ML.Data;
using Vae.ML.Tests.Core;

namespace Vae.ML.Tests.Reliability;

/// <summary>
/// The batching cursor gives every row its own outputs whatever the source's cursors do, and one transformer shared
/// by 8 threads returns exactly what one thread returns.
/// </summary>
public class ConcurrencyTests(ScoringModelFixture fixture) : IClassFixture<ScoringModelFixture>
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

        public float Score { get; set; }
    }

    /// <summary>Checks every row's outputs against the array API run on that row alone.</summary>
    private void ShouldBeTheRowsOwnOutputs(ScoredRows scored, SyntheticData.Row[] rows)
    {
        for (var i = 0; i < scored.Index.Length; i++)
        {
            var features = rows[scored.Index[i]].Features;
            // One row alone and a batch of 1024 may round differently in the last bits; another row differs by far more.
            scored.Score[i].Should().BeApproximately(_vae.Score(features)[0], 1e-3f, $"output row {i} is source row {scored.Index[i]}");
            scored.Latent[i].Should().Equal(_vae.Encode(features), (a, b) => Math.Abs(a - b) < 1e-4f);
        }
    }

    [Theory]
    [InlineData(50, 1)]
    [InlineData(1200, 1)]
    [InlineData(1200, 1100)]
    public void Every_row_gets_its_own_outputs_when_the_sources_cursors_agree_on_the_first_rows_and_then_diverge(int count, int divergeAfter)
    {
        var rows = SyntheticData.Rows(count, seed: 21);
        // Cursor 0 gives 0, 1, 2, ...; every later cursor agrees for `divergeAfter` rows and then runs backwards, as a
        // query without ORDER BY may. (The old design compared only the first row of each look-ahead batch.)
        IEnumerable<long> Order(int cursor) => cursor == 0
            ? RowSource.Sequence(0, count)
            : RowSource.Sequence(0, divergeAfter).Concat(RowSource.Sequence(divergeAfter, count - divergeAfter).Reverse());
        var source = RowSource.Of(rows, Order);

        var scored = ScoredRows.Read(_vae.Transform(source));

        scored.Index.Should().Equal(RowSource.Sequence(0, count));
        ShouldBeTheRowsOwnOutputs(scored, rows);
        source.OpenCursors.Should().Be(0);
    }

    [Fact]
    public void A_queue_that_hands_out_each_row_once_is_scored_completely_and_read_once()
    {
        var rows = SyntheticData.Rows(2500, seed: 22);
        var queue = new ConcurrentQueue<long>(RowSource.Sequence(0, rows.Length));
        IEnumerable<long> Drain(int cursor)
        {
            while (queue.TryDequeue(out var next))
            {
                yield return next;
            }
        }

        var source = RowSource.Of(rows, Drain);

        var scored = ScoredRows.Read(_vae.Transform(source));

        scored.Index.Should().Equal(RowSource.Sequence(0, rows.Length), "a second cursor over a queue would take rows away from the first");
        ShouldBeTheRowsOwnOutputs(scored, rows);
        source.CursorsOpened.Should().Be(1, "the source is read once, not once for the rows and once more for the features");
    }

    [Fact]
    public void GetRowCursorSet_as_ML_NET_trainers_request_it_returns_every_row_once_with_its_outputs()
    {
        var rows = SyntheticData.Rows(3000, seed: 23);
        var scored = _vae.Transform(RowSource.Of(rows));
        var expected = ScoredRows.Read(scored);

        var cursors = scored.GetRowCursorSet(scored.Schema, 4, new Random(1));
        var parts = new ScoredRows[cursors.Length];
        Parallel.For(0, cursors.Length, i =>
        {
            using var cursor = cursors[i];
            parts[i] = ScoredRows.Read(cursor, scored.Schema);
        });

        var byIndex = parts.SelectMany(p => p.Index.Select((index, i) => (index, score: p.Score[i], latent: p.Latent[i]))).OrderBy(t => t.index).ToArray();
        byIndex.Select(t => t.index).Should().Equal(expected.Index);
        byIndex.Select(t => t.score).Should().Equal(expected.Score);

        // And through a real ML.NET trainer that asks for parallel cursors.
        var clusters = fixture.Context.Clustering.Trainers.KMeans("Latent", numberOfClusters: 4).Fit(scored);
        clusters.Transform(scored).GetColumn<uint>("PredictedLabel").Should().HaveCount(3000);
    }

    [Fact]
    public void Consecutive_Predict_calls_on_one_engine_each_get_their_own_row()
    {
        var rows = SyntheticData.Rows(4, seed: 24);
        using var engine = fixture.Context.Model.CreatePredictionEngine<PixelRow, Prediction>(_vae, new PredictionEngineOptions { OwnsTransformer = false });

        foreach (var i in new[] { 0, 1, 1, 2, 0, 3 })
        {
            var prediction = engine.Predict(new PixelRow { Features = rows[i].Features });
            prediction.Latent.Should().Equal(_vae.Encode(rows[i].Features), $"prediction for row {i}");
            prediction.Score.Should().Be(_vae.Score(rows[i].Features)[0]);
        }
    }

    [Fact]
    public void Eight_threads_sharing_one_transformer_get_exactly_what_one_thread_gets()
    {
        var ml = fixture.Context;
        var rows = SyntheticData.Rows(2100, seed: 25);
        var matrix = SyntheticData.Matrix(rows);
        var data = ml.Data.LoadFromEnumerable(rows);

        Result Run()
        {
            var scored = _vae.Transform(data);
            var cursorScores = scored.GetColumn<float>("Score").ToArray();
            var cursorLatents = scored.GetColumn<float[]>("Latent").SelectMany(v => v).ToArray();
            using var engine = ml.Model.CreatePredictionEngine<PixelRow, Prediction>(_vae, new PredictionEngineOptions { OwnsTransformer = false });
            var engineScores = rows.Take(50).Select(r => engine.Predict(new PixelRow { Features = r.Features }).Score).ToArray();
            return new Result(cursorScores, cursorLatents, engineScores, _vae.Score(matrix), _vae.Encode(matrix), _vae.Reconstruct(matrix.AsSpan(0, 100 * Width)));
        }

        var alone = Run();
        var results = new Result[8];
        using var start = new Barrier(8);
        var threads = Enumerable.Range(0, 8).Select(t => new Thread(() =>
        {
            start.SignalAndWait();
            results[t] = Run();
        })).ToArray();
        foreach (var thread in threads)
        {
            thread.Start();
        }

        foreach (var thread in threads)
        {
            thread.Join();
        }

        foreach (var result in results)
        {
            result.CursorScores.Should().Equal(alone.CursorScores);
            result.CursorLatents.Should().Equal(alone.CursorLatents);
            result.EngineScores.Should().Equal(alone.EngineScores);
            result.ArrayScores.Should().Equal(alone.ArrayScores);
            result.ArrayLatents.Should().Equal(alone.ArrayLatents);
            result.ArrayReconstructions.Should().Equal(alone.ArrayReconstructions);
        }
    }

    private sealed record Result(float[] CursorScores, float[] CursorLatents, float[] EngineScores, float[] ArrayScores, float[] ArrayLatents, float[] ArrayReconstructions);
}
