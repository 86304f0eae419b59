namespace Vae.ML.Datasets;

/// <summary>
/// Thrown when a data set's files are neither in the data directory nor obtainable from any source. The message
/// lists every source tried, why each failed, and how to place the files by hand.
/// </summary>
public sealed class DatasetUnavailableException : IOException
{
    /// <summary>Creates the exception with a default message.</summary>
    public DatasetUnavailableException()
        : base("The data set's files could not be obtained.")
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What was tried and how to fix it.</param>
    public DatasetUnavailableException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and the error that caused it.</summary>
    /// <param name="message">What was tried and how to fix it.</param>
    /// <param name="innerException">The error that caused this one.</param>
    public DatasetUnavailableException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
