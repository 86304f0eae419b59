namespace Vae.ML;

/// <summary>The kind of network a <see cref="VaeTrainer"/> builds (<see cref="VaeOptions.Architecture"/>).</summary>
public enum VaeArchitecture
{
    /// <summary>
    /// Fully connected encoder and mirrored decoder (<see cref="VaeOptions.HiddenSizes"/>): the original report's
    /// 784-400-2 VAE with the default options.
    /// </summary>
    Mlp = 0,

    /// <summary>
    /// Convolutional encoder (two 3×3 convolutions of stride 2 with 32 and 64 channels) and transposed-convolution
    /// decoder, as in the Keras VAE example; <see cref="VaeOptions.HiddenSizes"/> are dense layers between the
    /// flattened feature maps and the latent space. Needs <see cref="VaeOptions.ImageShape"/>.
    /// </summary>
    Convolutional = 1,
}
