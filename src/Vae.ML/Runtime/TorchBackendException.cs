namespace Vae.ML.Runtime;

/// <summary>
/// Thrown when TorchSharp, the engine Vae.ML trains and runs models with, cannot be started in this process:
/// no libtorch backend package is referenced by the application, or its native libraries do not load on this
/// system. The message says which, and what to change.
/// </summary>
public sealed class TorchBackendException : InvalidOperationException
{
    /// <summary>Creates the exception with a message that explains the problem and the remedy.</summary>
    /// <param name="message">What failed and what to do about it.</param>
    public TorchBackendException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and the underlying failure.</summary>
    /// <param name="message">What failed and what to do about it.</param>
    /// <param name="innerException">The exception TorchSharp or the native loader raised.</param>
    public TorchBackendException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
