using Microsoft.ML;
using Microsoft.ML.Data;

namespace Vae.ML.Anomaly;

/// <summary>The lazy result of <see cref="VaeAnomalyTransformer.Transform"/>.</summary>
internal sealed class AnomalyDataView(VaeAnomalyTransformer detector, DataViewSchema inputSchema, IDataView vaeOutput) : IDataView
{
    private readonly AnomalyColumns _columns = new(detector, inputSchema, vaeOutput.Schema);

    public bool CanShuffle => vaeOutput.CanShuffle;

    public DataViewSchema Schema => _columns.OutputSchema;

    public long? GetRowCount() => vaeOutput.GetRowCount();

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
        => new AnomalyCursor(_columns, vaeOutput.GetRowCursor(_columns.ToVaeColumns(columnsNeeded), rand));

    // One cursor, as the VAE's view: it batches rows through one shared network.
    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
        => [GetRowCursor(columnsNeeded, rand)];

    private sealed class AnomalyCursor(AnomalyColumns columns, DataViewRowCursor vae) : DataViewRowCursor
    {
        public override DataViewSchema Schema => columns.OutputSchema;

        public override long Position => vae.Position;

        public override long Batch => vae.Batch;

        public override ValueGetter<DataViewRowId> GetIdGetter() => vae.GetIdGetter();

        public override bool IsColumnActive(DataViewSchema.Column column) => columns.IsActive(column, vae.IsColumnActive);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column) => columns.GetGetter<TValue>(vae, column);

        public override bool MoveNext() => vae.MoveNext();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                vae.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
