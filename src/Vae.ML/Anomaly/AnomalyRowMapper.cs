using Microsoft.ML;
using Microsoft.ML.Data;

namespace Vae.ML.Anomaly;

/// <summary>Single-row mapping for the prediction engine, on top of the VAE's row mapper.</summary>
internal sealed class AnomalyRowMapper : IRowToRowMapper
{
    private readonly IRowToRowMapper _vae;
    private readonly AnomalyColumns _columns;

    public AnomalyRowMapper(VaeAnomalyTransformer detector, IRowToRowMapper vae)
    {
        _vae = vae;
        _columns = new AnomalyColumns(detector, vae.InputSchema, vae.OutputSchema);
    }

    public DataViewSchema InputSchema => _vae.InputSchema;

    public DataViewSchema OutputSchema => _columns.OutputSchema;

    public IEnumerable<DataViewSchema.Column> GetDependencies(IEnumerable<DataViewSchema.Column> dependingColumns)
        => _vae.GetDependencies(_columns.ToVaeColumns(dependingColumns));

    public DataViewRow GetRow(DataViewRow input, IEnumerable<DataViewSchema.Column> activeColumns)
        => new AnomalyRow(_columns, _vae.GetRow(input, _columns.ToVaeColumns(activeColumns)));

    private sealed class AnomalyRow(AnomalyColumns columns, DataViewRow vae) : DataViewRow
    {
        public override DataViewSchema Schema => columns.OutputSchema;

        public override long Position => vae.Position;

        public override long Batch => vae.Batch;

        public override ValueGetter<DataViewRowId> GetIdGetter() => vae.GetIdGetter();

        public override bool IsColumnActive(DataViewSchema.Column column) => columns.IsActive(column, vae.IsColumnActive);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column) => columns.GetGetter<TValue>(vae, column);

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
