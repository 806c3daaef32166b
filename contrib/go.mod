module github.com/qorbgo/qorb/contrib

go 1.26

replace github.com/qorbgo/qorb => ../
