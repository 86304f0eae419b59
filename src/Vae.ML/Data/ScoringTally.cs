using System.Globalization;
using System.Runtime.CompilerServices;
using Microsoft.ML.Runtime;

namespace Vae.ML.Data;

/// <summary>
/// Counts, over one scoring pass (a cursor, a prediction engine, one array call), the rows whose values lie outside the
/// range the model was trained on, and logs them in ONE warning through the ML.NET environment (<c>mlContext.Log</c>):
/// scoring never throws on a value, but it does not hide odd data either.
/// </summary>
internal sealed class ScoringTally(IHostEnvironment environment, string pass)
{
    private long _rows;
    private long _outOfRange;
    private long _notFinite;
    private int _reported;

    /// <summary>Rows counted so far.</summary>
    public long Rows => Interlocked.Read(ref _rows);

    /// <summary>Rows with finite values outside [0, 1] counted so far.</summary>
    public long OutOfRange => Interlocked.Read(ref _outOfRange);

    /// <summary>Rows with a NaN or infinite value counted so far.</summary>
    public long NotFinite => Interlocked.Read(ref _notFinite);

    /// <summary>Counts one scored row.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Count(RowValues values)
    {
        Interlocked.Increment(ref _rows);
        if (values == RowValues.OutOfRange)
        {
            Interlocked.Increment(ref _outOfRange);
        }
        else if (values == RowValues.NotFinite)
        {
            Interlocked.Increment(ref _notFinite);
        }
    }

    /// <summary>Counts scored rows.</summary>
    public void Count(ReadOnlySpan<RowValues> values)
    {
        foreach (var v in values)
        {
            Count(v);
        }
    }

    /// <summary>Logs the warning for this pass, if any row was odd; later calls do nothing.</summary>
    public void Report()
    {
        if (Interlocked.Exchange(ref _reported, 1) != 0 || (OutOfRange == 0 && NotFinite == 0))
        {
            return;
        }

        var message = Describe(pass, Rows, OutOfRange, NotFinite);
        using var channel = environment.Start("Vae");
        channel.Warning(MessageSensitivity.None, "{0}", message);
    }

    /// <summary>The warning's text.</summary>
    internal static string Describe(string pass, long rows, long outOfRange, long notFinite)
    {
        var parts = new List<string>();
        if (outOfRange > 0)
        {
            parts.Add(string.Format(CultureInfo.InvariantCulture,
                "{0} of {1} rows had values outside [0, 1], the range the VAE was trained on; they were scored as they are, " +
                "but binary cross-entropy is a log-likelihood only on [0, 1], so their Score can be very large or even negative (scale pixels by 1/255, or add NormalizeMinMax before the VAE)",
                outOfRange, rows));
        }

        if (notFinite > 0)
        {
            parts.Add(string.Create(CultureInfo.InvariantCulture,
                $"{notFinite} of {rows} rows had NaN or infinite values; their outputs are NaN"));
        }

        return $"{pass}: {string.Join("; ", parts)}.";
    }
}
