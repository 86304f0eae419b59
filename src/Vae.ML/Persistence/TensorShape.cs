namespace Vae.ML.Persistence;

/// <summary>One named tensor of the network, as PyTorch's state_dict names it.</summary>
internal sealed record TensorShape(string Name, long[] Shape)
{
    /// <summary>Number of elements (the product of <see cref="Shape"/>).</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, b) => checked(a * b));

    /// <summary>The shape as "[400, 784]" for messages.</summary>
    public string ShapeText => Describe(Shape);

    public static string Describe(IEnumerable<long> shape) => $"[{string.Join(", ", shape)}]";
}
