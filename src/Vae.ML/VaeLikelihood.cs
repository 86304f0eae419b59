namespace Vae.ML;

/// <summary>The decoder's distribution p(x|z), which fixes the reconstruction term of the loss and the Score.</summary>
public enum VaeLikelihood
{
    /// <summary>
    /// Independent Bernoulli per feature: the summed binary cross-entropy of the original report. Training values must
    /// lie in [0, 1] (pixels scaled by 1/255, or min-max normalized features). The default.
    /// </summary>
    Bernoulli = 0,

    /// <summary>
    /// Independent Gaussian per feature for real-valued data: the decoder gives the mean, and each feature has a learned
    /// log-variance (shared by all rows). Loss and Score are the negative ELBO in nats of the raw row,
    /// ½ Σ [log 2π + log σ² + (x − μ)²/σ²] + β·KL, so they compare across rows and across models of the same columns.
    /// Any finite values; features are standardized by the trainer unless <see cref="VaeOptions.StandardizeFeatures"/> is false.
    /// </summary>
    Gaussian = 1,
}
