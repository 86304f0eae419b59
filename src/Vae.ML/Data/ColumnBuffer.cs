using System.Runtime.CompilerServices;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Vae.ML.Data;

/// <summary>
/// Holds one input column's values for a batch of rows, so that the batching cursor can read its input once, ahead of
/// the consumer, and still pass the input columns through. Values are copied (vectors deeply), never shared with the
/// input cursor, whose getters may reuse their buffers.
/// </summary>
internal abstract class ColumnBuffer
{
    /// <summary>A buffer of <paramref name="capacity"/> rows for <paramref name="column"/>, read from <paramref name="input"/>.</summary>
    public static ColumnBuffer Create(DataViewRowCursor input, DataViewSchema.Column column, int capacity)
    {
        var type = column.Type is VectorDataViewType vector
            ? typeof(VectorColumnBuffer<>).MakeGenericType(vector.ItemType.RawType)
            : typeof(ScalarColumnBuffer<>).MakeGenericType(column.Type.RawType);
        try
        {
            return (ColumnBuffer)Activator.CreateInstance(type, input, column, capacity)!;
        }
        catch (System.Reflection.TargetInvocationException e) when (e.InnerException is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e.InnerException);
            throw;
        }
    }

    /// <summary>The column this buffer holds.</summary>
    public abstract DataViewSchema.Column Column { get; }

    /// <summary>Copies the input cursor's current value into row <paramref name="slot"/>.</summary>
    public abstract void Capture(int slot);

    /// <summary>A getter of <typeparamref name="TValue"/> that reads the row <paramref name="slot"/> returns.</summary>
    public abstract ValueGetter<TValue> GetGetter<TValue>(Func<int> slot);

    private protected static InvalidOperationException WrongType<TValue>(DataViewSchema.Column column)
        => new($"Column '{column.Name}' is {column.Type}; it cannot be read as {typeof(TValue)}.");
}

/// <summary>A column of single values (numbers, text, keys, ...).</summary>
internal sealed class ScalarColumnBuffer<T> : ColumnBuffer
{
    private readonly ValueGetter<T> _getter;
    private readonly T[] _values;

    public ScalarColumnBuffer(DataViewRowCursor input, DataViewSchema.Column column, int capacity)
    {
        Column = column;
        _getter = input.GetGetter<T>(column);
        _values = new T[capacity];
    }

    public override DataViewSchema.Column Column { get; }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public override void Capture(int slot) => _getter(ref _values[slot]);

    public override ValueGetter<TValue> GetGetter<TValue>(Func<int> slot)
    {
        if (typeof(TValue) != typeof(T))
        {
            throw WrongType<TValue>(Column);
        }

        ValueGetter<T> getter = [MethodImpl(MethodImplOptions.AggressiveOptimization)] (ref T value) => value = _values[slot()];
        return (ValueGetter<TValue>)(Delegate)getter;
    }
}

/// <summary>A vector column: each row keeps its own copy of the values.</summary>
internal sealed class VectorColumnBuffer<T> : ColumnBuffer
{
    private readonly ValueGetter<VBuffer<T>> _getter;
    private readonly VBuffer<T>[] _values;
    private VBuffer<T> _scratch;

    public VectorColumnBuffer(DataViewRowCursor input, DataViewSchema.Column column, int capacity)
    {
        Column = column;
        _getter = input.GetGetter<VBuffer<T>>(column);
        _values = new VBuffer<T>[capacity];
    }

    public override DataViewSchema.Column Column { get; }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public override void Capture(int slot)
    {
        _getter(ref _scratch);
        _scratch.CopyTo(ref _values[slot]);
    }

    public override ValueGetter<TValue> GetGetter<TValue>(Func<int> slot)
    {
        if (typeof(TValue) != typeof(VBuffer<T>))
        {
            throw WrongType<TValue>(Column);
        }

        ValueGetter<VBuffer<T>> getter = [MethodImpl(MethodImplOptions.AggressiveOptimization)] (ref VBuffer<T> value) => _values[slot()].CopyTo(ref value);
        return (ValueGetter<TValue>)(Delegate)getter;
    }
}
