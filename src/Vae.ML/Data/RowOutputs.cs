using Microsoft.ML;
using Microsoft.ML.Data;
using Vae.ML.Torch;

namespace Vae.ML.Data;

/// <summary>
/// Output buffers for a batch of rows and the getters that read the current row out of them. Only the active outputs
/// are computed: the decoder runs only when Reconstruction or Score is read.
/// </summary>
internal sealed class RowOutputs
{
    private readonly VaeTransformer _transformer;
    private readonly float[] _latent;
    private readonly float[] _logVariance;
    private readonly float[] _reconstruction;
    private readonly float[] _score;
    private readonly RowValues[] _rowValues;

    public RowOutputs(VaeTransformer transformer, int capacity, bool[] active)
    {
        _transformer = transformer;
        var d = transformer.LatentDimension;
        _latent = active[VaeRowMapping.LatentSlot] ? new float[capacity * d] : [];
        _logVariance = active[VaeRowMapping.LogVarianceSlot] ? new float[capacity * d] : [];
        _reconstruction = active[VaeRowMapping.ReconstructionSlot] ? new float[capacity * transformer.InputSize] : [];
        _score = active[VaeRowMapping.ScoreSlot] ? new float[capacity] : [];
        _rowValues = new RowValues[capacity];
    }

    /// <summary>
    /// Runs the network on <paramref name="rows"/> rows of <paramref name="inputs"/>. Never throws on a value: a row
    /// with NaN/∞ gets NaN outputs (see <see cref="VaeModel.Infer"/>); <see cref="ValuesOf"/> tells which rows were odd.
    /// </summary>
    public void Compute(ReadOnlySpan<float> inputs, int rows)
    {
        var d = _transformer.LatentDimension;
        var width = _transformer.InputSize;
        _transformer.Model.Infer(
            inputs[..(rows * width)],
            rows,
            _latent.Length == 0 ? default : _latent.AsSpan(0, rows * d),
            _logVariance.Length == 0 ? default : _logVariance.AsSpan(0, rows * d),
            _reconstruction.Length == 0 ? default : _reconstruction.AsSpan(0, rows * width),
            _score.Length == 0 ? default : _score.AsSpan(0, rows),
            _transformer.Beta,
            _rowValues.AsSpan(0, rows));
    }

    /// <summary>Where the values of row <paramref name="index"/> of the last computed batch lie relative to [0, 1].</summary>
    public RowValues ValuesOf(int index) => _rowValues[index];

    /// <summary>
    /// A getter for output <paramref name="slot"/>; <paramref name="currentRow"/> makes sure the current row is
    /// computed and returns its index within the batch.
    /// </summary>
    public ValueGetter<TValue> GetGetter<TValue>(int slot, DataViewSchema.Column column, Func<int> currentRow)
    {
        if (slot == VaeRowMapping.ScoreSlot)
        {
            if (typeof(TValue) != typeof(float))
            {
                throw new InvalidOperationException($"Column '{column.Name}' is Single; it cannot be read as {typeof(TValue)}.");
            }

            ValueGetter<float> score = (ref float value) => value = _score[currentRow()];
            return (ValueGetter<TValue>)(Delegate)score;
        }

        if (typeof(TValue) != typeof(VBuffer<float>))
        {
            throw new InvalidOperationException($"Column '{column.Name}' is a vector of Single; it cannot be read as {typeof(TValue)}.");
        }

        var (source, width) = slot switch
        {
            VaeRowMapping.LatentSlot => (_latent, _transformer.LatentDimension),
            VaeRowMapping.LogVarianceSlot => (_logVariance, _transformer.LatentDimension),
            _ => (_reconstruction, _transformer.InputSize),
        };
        ValueGetter<VBuffer<float>> vector = (ref VBuffer<float> value) =>
        {
            var row = currentRow();
            var editor = VBufferEditor.Create(ref value, width);
            source.AsSpan(row * width, width).CopyTo(editor.Values);
            value = editor.Commit();
        };
        return (ValueGetter<TValue>)(Delegate)vector;
    }
}
