module fcgipeer

go 1.19
