using System.Runtime.CompilerServices;
using Microsoft.ML;
using Microsoft.ML.Data;
using Vae.ML.Torch;

namespace Vae.ML.Data;

/// <summary>
/// Output buffers for a batch of rows and the getters that read the current row out of them, allocated once per
/// cursor or row; for a cursor also its native input rows (<see cref="CaptureInput"/>). Only the outputs someone made a
/// getter for are computed, whatever columns were declared active (a prediction engine declares all of them and reads
/// its own): the decoder runs only when Reconstruction or Score is read.
/// </summary>
internal sealed class RowOutputs : IDisposable
{
    private readonly VaeTransformer _transformer;
    private readonly int _capacity;
    private readonly float[]?[] _values = new float[]?[4];
    private readonly RowValues[] _rowValues;
    private InputBatch? _input;

    public RowOutputs(VaeTransformer transformer, int capacity)
    {
        _transformer = transformer;
        _capacity = capacity;
        _rowValues = new RowValues[capacity];
    }

    /// <summary>Whether the outputs of the current rows are computed; false after <see cref="Invalidate"/> and after a getter for a new output was made.</summary>
    public bool Computed { get; private set; }

    /// <summary>New input rows: the outputs must be computed again before they are read.</summary>
    public void Invalidate() => Computed = false;

    /// <summary>
    /// Copies <paramref name="features"/> into row <paramref name="row"/> of the batch's input (the model's reusable input
    /// rows, taken at first use) and classifies its values on the way, for <see cref="ComputeBatch"/>.
    /// </summary>
    /// <exception cref="ArgumentException">The vector does not have the model's input size (the message names the row).</exception>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void CaptureInput(int row, in VBuffer<float> features, string columnName, long position, string dataName)
    {
        _input ??= _transformer.Model.RentInputBatch(_capacity);
        _rowValues[row] = FeatureColumn.CopyDenseClassified(features, _input.Row(row), _transformer.Model.Likelihood == VaeLikelihood.Bernoulli, columnName, position, dataName);
    }

    /// <summary>
    /// Runs the network on <paramref name="rows"/> rows of <paramref name="inputs"/>. Never throws on a value: a row
    /// with NaN/∞ gets NaN outputs (see <see cref="VaeModel.Infer"/>); <see cref="ValuesOf"/> tells which rows were odd.
    /// </summary>
    public void Compute(ReadOnlySpan<float> inputs, int rows)
    {
        _transformer.Model.Infer(inputs[..(rows * _transformer.InputSize)], rows, Output(VaeRowMapping.LatentSlot, rows), Output(VaeRowMapping.LogVarianceSlot, rows),
            Output(VaeRowMapping.ReconstructionSlot, rows), Output(VaeRowMapping.ScoreSlot, rows), _transformer.Beta, _rowValues.AsSpan(0, rows));
        Computed = true;
    }

    /// <summary>Runs the network on the first <paramref name="rows"/> rows written through <see cref="CaptureInput"/>, as <see cref="Compute"/> does.</summary>
    public void ComputeBatch(int rows)
    {
        if (_input is not null)
        {
            _transformer.Model.InferBatch(_input, rows, Output(VaeRowMapping.LatentSlot, rows), Output(VaeRowMapping.LogVarianceSlot, rows),
                Output(VaeRowMapping.ReconstructionSlot, rows), Output(VaeRowMapping.ScoreSlot, rows), _transformer.Beta, _rowValues.AsSpan(0, rows));
        }

        Computed = true;
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

            var scores = Want(slot);
            ValueGetter<float> score = [MethodImpl(MethodImplOptions.AggressiveOptimization)] (ref float value) => value = scores[currentRow()];
            return (ValueGetter<TValue>)(Delegate)score;
        }

        if (typeof(TValue) != typeof(VBuffer<float>))
        {
            throw new InvalidOperationException($"Column '{column.Name}' is a vector of Single; it cannot be read as {typeof(TValue)}.");
        }

        var source = Want(slot);
        var width = Width(slot);
        ValueGetter<VBuffer<float>> vector = [MethodImpl(MethodImplOptions.AggressiveOptimization)] (ref VBuffer<float> value) =>
        {
            var row = currentRow();
            var editor = VBufferEditor.Create(ref value, width);
            source.AsSpan(row * width, width).CopyTo(editor.Values);
            value = editor.Commit();
        };
        return (ValueGetter<TValue>)(Delegate)vector;
    }

    /// <summary>Hands the native input rows back to the model, for the next cursor.</summary>
    public void Dispose()
    {
        if (_input is { } input)
        {
            _input = null;
            _transformer.Model.ReturnInputBatch(input);
        }
    }

    private int Width(int slot) => slot switch
    {
        VaeRowMapping.LatentSlot or VaeRowMapping.LogVarianceSlot => _transformer.LatentDimension,
        VaeRowMapping.ReconstructionSlot => _transformer.InputSize,
        _ => 1,
    };

    /// <summary>The buffer of output <paramref name="slot"/>, allocated when its first getter is made; the current rows then lack it.</summary>
    private float[] Want(int slot)
    {
        if (_values[slot] is not { } values)
        {
            values = _values[slot] = new float[_capacity * Width(slot)];
            Computed = false;
        }

        return values;
    }

    /// <summary>The first <paramref name="rows"/> rows of output <paramref name="slot"/>'s buffer, or empty (not computed) when nobody reads it.</summary>
    private Span<float> Output(int slot, int rows) => _values[slot] is { } values ? values.AsSpan(0, rows * Width(slot)) : default;
}
