// placeholder until the embedded cluster tests land
