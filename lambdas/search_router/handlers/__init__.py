"""One module per Lambda function (its name is the function's Powertools service name), thin entry points."""
