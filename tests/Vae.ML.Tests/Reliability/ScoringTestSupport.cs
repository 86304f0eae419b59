using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Vae.ML.Tests.Core;

namespace Vae.ML.Tests.Reliability;

/// <summary>One small VAE trained once (64-16-2 on synthetic rows), shared by the scoring and concurrency tests.</summary>
public sealed class ScoringModelFixture : IDisposable
{
    public ScoringModelFixture()
    {
        Context = new MLContext(seed: 0);
        Context.Log += (_, e) =>
        {
            if (e.Kind == ChannelMessageKind.Warning && e.Message.Contains("VAE scoring", StringComparison.Ordinal))
            {
                lock (Warnings)
                {
                    Warnings.Add(e.Message);
                }
            }
        };
        var options = new VaeOptions { HiddenSizes = [16], Epochs = 3, BatchSize = 32, Seed = 5, Device = "cpu" };
        Vae = Context.Transforms.Vae(options).Fit(SyntheticData.Load(Context, 256));
    }

    public MLContext Context { get; }

    public VaeTransformer Vae { get; }

    /// <summary>The scoring warnings the MLContext logged (tests clear it first).</summary>
    public List<string> Warnings { get; } = [];

    public string[] TakeWarnings()
    {
        lock (Warnings)
        {
            var copy = Warnings.ToArray();
            Warnings.Clear();
            return copy;
        }
    }

    public void Dispose() => Vae.Dispose();
}

/// <summary>
/// A hand-made source: each cursor gets its own row order (rows are identified by index, which is also the row id),
/// features come from a function of the row index, and open cursors are counted. Stands in for sources whose two
/// cursors need not agree (a database query without ORDER BY, a queue) and for sources that fail.
/// </summary>
public sealed class RowSource : IDataView
{
    private readonly Func<int, IEnumerable<long>> _orderOfCursor;
    private readonly Action<long, Span<float>> _features;
    private int _cursorsOpened;
    private int _open;

    public RowSource(long rows, Action<long, Span<float>> features, Func<int, IEnumerable<long>>? orderOfCursor = null, int width = SyntheticData.Width)
    {
        Rows = rows;
        Width = width;
        _features = features;
        _orderOfCursor = orderOfCursor ?? (_ => Sequence(0, rows));
        var builder = new DataViewSchema.Builder();
        builder.AddColumn("Features", new VectorDataViewType(NumberDataViewType.Single, width));
        builder.AddColumn("Index", NumberDataViewType.Int64);
        Schema = builder.ToSchema();
    }

    public long Rows { get; }

    public int Width { get; }

    /// <summary>Makes GetGetter of the feature column throw on the cursor with this number (0 = the first opened).</summary>
    public int? FailFeatureGetterOnCursor { get; set; }

    /// <summary>Cursors opened so far.</summary>
    public int CursorsOpened => Volatile.Read(ref _cursorsOpened);

    /// <summary>Cursors opened and not yet disposed.</summary>
    public int OpenCursors => Volatile.Read(ref _open);

    public bool CanShuffle => false;

    public DataViewSchema Schema { get; }

    public static IEnumerable<long> Sequence(long start, long count)
    {
        for (var i = 0L; i < count; i++)
        {
            yield return start + i;
        }
    }

    /// <summary>Synthetic rows as a source, features taken from <paramref name="rows"/>.</summary>
    public static RowSource Of(SyntheticData.Row[] rows, Func<int, IEnumerable<long>>? orderOfCursor = null)
        => new(rows.Length, (i, span) => rows[i].Features.CopyTo(span), orderOfCursor);

    public long? GetRowCount() => null;

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        var number = Interlocked.Increment(ref _cursorsOpened) - 1;
        Interlocked.Increment(ref _open);
        return new Cursor(this, _orderOfCursor(number).GetEnumerator(), number == FailFeatureGetterOnCursor);
    }

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
        => [GetRowCursor(columnsNeeded, rand)];

    private sealed class Cursor(RowSource source, IEnumerator<long> order, bool failFeatures) : DataViewRowCursor
    {
        private long _position = -1;
        private bool _disposed;

        public override DataViewSchema Schema => source.Schema;

        public override long Position => _position;

        public override long Batch => 0;

        public override bool IsColumnActive(DataViewSchema.Column column) => true;

        public override bool MoveNext()
        {
            if (_disposed || !order.MoveNext())
            {
                return false;
            }

            _position++;
            return true;
        }

        public override ValueGetter<DataViewRowId> GetIdGetter()
            => (ref DataViewRowId id) => id = new DataViewRowId((ulong)order.Current, 0);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (column.Index == 1)
            {
                ValueGetter<long> index = (ref long value) => value = order.Current;
                return (ValueGetter<TValue>)(Delegate)index;
            }

            if (failFeatures)
            {
                throw new InvalidOperationException("This source fails on purpose.");
            }

            ValueGetter<VBuffer<float>> features = (ref VBuffer<float> value) =>
            {
                var editor = VBufferEditor.Create(ref value, source.Width);
                source._features(order.Current, editor.Values);
                value = editor.Commit();
            };
            return (ValueGetter<TValue>)(Delegate)features;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing && !_disposed)
            {
                _disposed = true;
                order.Dispose();
                Interlocked.Decrement(ref source._open);
            }

            base.Dispose(disposing);
        }
    }
}

/// <summary>Reads every VAE output column of a view into arrays, keyed by the source's Index column.</summary>
public sealed record ScoredRows(long[] Index, float[][] Latent, float[][] LogVariance, float[][] Reconstruction, float[] Score)
{
    public static ScoredRows Read(DataViewRowCursor cursor, DataViewSchema schema)
    {
        var index = cursor.GetGetter<long>(schema["Index"]);
        var latent = cursor.GetGetter<VBuffer<float>>(schema["Latent"]);
        var logVariance = cursor.GetGetter<VBuffer<float>>(schema["LatentLogVariance"]);
        var reconstruction = cursor.GetGetter<VBuffer<float>>(schema["Reconstruction"]);
        var score = cursor.GetGetter<float>(schema["Score"]);
        var rows = new List<(long, float[], float[], float[], float)>();
        VBuffer<float> buffer = default;
        while (cursor.MoveNext())
        {
            long i = 0;
            float s = 0;
            index(ref i);
            score(ref s);
            latent(ref buffer);
            var l = buffer.DenseValues().ToArray();
            logVariance(ref buffer);
            var lv = buffer.DenseValues().ToArray();
            reconstruction(ref buffer);
            rows.Add((i, l, lv, buffer.DenseValues().ToArray(), s));
        }

        return new ScoredRows(
            rows.Select(r => r.Item1).ToArray(), rows.Select(r => r.Item2).ToArray(), rows.Select(r => r.Item3).ToArray(),
            rows.Select(r => r.Item4).ToArray(), rows.Select(r => r.Item5).ToArray());
    }

    public static ScoredRows Read(IDataView scored)
    {
        using var cursor = scored.GetRowCursor(scored.Schema);
        return Read(cursor, scored.Schema);
    }
}
